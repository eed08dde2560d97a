/*
 * pid_for_children_opens_early: namespaces(7), /proc/[pid]/ns/pid_for_children:
 * "The symbolic link gains a value only after the first child process is
 * created in the namespace."
 *
 * After unshare(CLONE_NEWPID), before any child exists, opening the
 * caller's pid_for_children must fail (ENOENT). Kernels that open it at
 * once, naming the new namespace, deviate.
 *
 * Build and run: cc -o repro pid_for_children_opens_early.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here, 3 broken setup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	close(fd);
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

int main(void)
{
	/* Before the unshare it names our own pid namespace. */
	if (access("/proc/self/ns/pid_for_children", F_OK))
		say(2, "CANNOT RUN", "no /proc/self/ns/pid_for_children (Linux 4.12+ with /proc mounted)");
	if (unshare(CLONE_NEWPID)) {
		if (errno != EPERM || enter_user_ns() || unshare(CLONE_NEWPID))
			say(2, "CANNOT RUN", "unshare(CLONE_NEWPID): %s (needs root or unprivileged user namespaces)", strerror(errno));
	}
	int fd = open("/proc/self/ns/pid_for_children", O_RDONLY);
	if (fd < 0 && errno == ENOENT)
		say(0, "CONFORMS", "pid_for_children cannot be opened before the first child (ENOENT)");
	if (fd < 0)
		say(3, "BROKEN", "opening pid_for_children: %s (expected ENOENT or success)", strerror(errno));
	char link[64] = "";
	if (readlink("/proc/self/ns/pid_for_children", link, sizeof link - 1) < 0)
		snprintf(link, sizeof link, "(readlink: %s)", strerror(errno));
	say(1, "DEVIATES", "pid_for_children opened before the first child: %s", link);
}
