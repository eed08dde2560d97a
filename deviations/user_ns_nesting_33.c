/*
 * user_ns_nesting_33 (undocumented behaviour): user_namespaces(7): "The
 * kernel imposes (since Linux 3.11) a limit of 32 nested levels of user
 * namespaces."
 *
 * Counts the user namespaces that can be nested below the initial one
 * (unshare(CLONE_NEWUSER) until refused). create_user_ns() refuses a
 * parent whose level is above 32, so 33 levels can be created: the man
 * page says 32.
 *
 * Build and run (from the initial user namespace, any uid):
 *   cc -o repro user_ns_nesting_33.c && ./repro
 * Exit: 0 CONFORMS (32), 1 DEVIATES (another depth), 2 cannot run here, 3 broken setup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Prints the verdict line and exits with its code. */
static void say(int code, const char *word, const char *fmt, ...)
{
	va_list ap;
	printf("%s: ", word);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(code);
}

static __attribute__((unused)) int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Become uid 0 with every capability in a new user namespace. */
static __attribute__((unused)) int enter_user_ns(void)
{
	char map[64];
	unsigned uid = geteuid(), gid = getegid();
	if (unshare(CLONE_NEWUSER))
		return -1;
	snprintf(map, sizeof map, "0 %u 1", uid);
	if (write_file("/proc/self/uid_map", map))
		return -1;
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof map, "0 %u 1", gid);
	return write_file("/proc/self/gid_map", map);
}

/* Whether the caller is in the initial user namespace (its identity map). */
static __attribute__((unused)) int in_initial_user_ns(void)
{
	unsigned long a = 1, b = 1, c = 0;
	FILE *f = fopen("/proc/self/uid_map", "r");
	int n = f ? fscanf(f, "%lu %lu %lu", &a, &b, &c) : 0;
	if (f)
		fclose(f);
	return n == 3 && a == 0 && b == 0 && c == 4294967295UL;
}

static __attribute__((unused)) double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void)
{
	if (!in_initial_user_ns())
		say(2, "CANNOT RUN", "not in the initial user namespace: the depth is counted from it");
	int depth = 0, err = 0;
	for (;;) {
		if (enter_user_ns()) {
			err = errno;
			break;
		}
		if (++depth > 64)
			say(3, "BROKEN", "user namespaces nest deeper than 64 levels: no refusal");
	}
	if (depth == 0)
		say(2, "CANNOT RUN", "unshare(CLONE_NEWUSER): %s (unprivileged user namespaces forbidden?)", strerror(err));
	if (err != ENOSPC && err != EUSERS)
		say(3, "BROKEN", "level %d refused with %s, not ENOSPC (EUSERS before 4.9)", depth + 1, strerror(err));
	if (depth == 32)
		say(0, "CONFORMS", "32 nested user namespaces, the 33rd refused (%s)", strerror(err));
	say(1, "DEVIATES", "%d nested user namespaces below the initial one, not 32; the next refused (%s)", depth, strerror(err));
}
