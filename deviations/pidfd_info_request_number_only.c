/*
 * pidfd_info_request_number_only: ioctl(2): ENOTTY when the request does
 * not apply to the fd. <linux/pidfd.h> defines PIDFD_GET_INFO (6.13) as
 * _IOWR(0xFF, 11, struct pidfd_info), 64 bytes or more.
 *
 * Requests numbered 11 but of another type, direction or size must be
 * ENOTTY on a pidfd. From 6.13 pidfd_ioctl() compared only _IOC_NR() and
 * answered them EINVAL; 6.18 validates the whole request
 * (pidfs_ioctl_valid()).
 *
 * Build and run: cc -o repro pidfd_info_request_number_only.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here, 3 broken setup.
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

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#define IOC(dir, type, nr, size) (((unsigned long)(dir) << 30) | ((unsigned long)(size) << 16) | ((type) << 8) | (nr))

int main(void)
{
	int pidfd = syscall(__NR_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		say(2, "CANNOT RUN", "pidfd_open: %s (Linux 5.3+)", strerror(errno));
	/* No direction, read only, write only, a struct too small, another
	 * type: none is PIDFD_GET_INFO (_IOWR(0xFF, 11, struct pidfd_info),
	 * 64 bytes or more). */
	unsigned long req[] = { IOC(0, 0xff, 11, 0), IOC(2, 0xff, 11, 64), IOC(1, 0xff, 11, 64), IOC(3, 0xff, 11, 8),
				IOC(3, 0x01, 11, 64) };
	int recognised = 0, n = sizeof req / sizeof *req;
	for (int i = 0; i < n; i++) {
		int r = ioctl(pidfd, req[i], 0);
		if (r >= 0 || errno != ENOTTY) {
			recognised++;
			printf("  request %#lx: %s\n", req[i], r >= 0 ? "success" : strerror(errno));
		}
	}
	if (recognised)
		say(1, "DEVIATES", "%d of %d malformed requests numbered 11 on a pidfd were not ENOTTY", recognised, n);
	say(0, "CONFORMS", "all %d malformed requests numbered 11 on a pidfd were ENOTTY", n);
}
