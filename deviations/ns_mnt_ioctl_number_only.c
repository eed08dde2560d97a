/*
 * ns_mnt_ioctl_number_only: ioctl_ns(2) and ioctl(2): a request that does
 * not apply to the fd is ENOTTY. <linux/nsfs.h> defines NS_MNT_GET_INFO,
 * NS_MNT_GET_NEXT and NS_MNT_GET_PREV (6.12) as _IOR(0xb7, 10..12,
 * struct mnt_ns_info).
 *
 * Requests numbered 10 to 12 but of another type, direction or size must
 * be ENOTTY on every namespace fd. From 6.12 ns_ioctl() matched _IOC_NR()
 * alone and answered them EINVAL or EFAULT; 6.18 checks the whole request
 * (f8527a29f461, 4d906371d1f9).
 *
 * Build and run: cc -o repro ns_mnt_ioctl_number_only.c && ./repro
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

#define IOC(dir, type, nr, size) (((unsigned long)(dir) << 30) | ((unsigned long)(size) << 16) | ((type) << 8) | (nr))

int main(void)
{
	static const char *kinds[] = { "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts" };
	int tried = 0, recognised = 0;
	for (unsigned k = 0; k < sizeof kinds / sizeof *kinds; k++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/ns/%s", kinds[k]);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		for (unsigned nr = 10; nr <= 12; nr++) {
			/* No direction, write, read and write, a read too small
			 * for struct mnt_ns_info, another type: none is a request
			 * of <linux/nsfs.h>. */
			unsigned long req[] = { IOC(0, 0xb7, nr, 0), IOC(1, 0xb7, nr, 16), IOC(3, 0xb7, nr, 16),
						IOC(2, 0xb7, nr, 8), IOC(0, 0x01, nr, 0) };
			for (unsigned i = 0; i < sizeof req / sizeof *req; i++) {
				tried++;
				int r = ioctl(fd, req[i], 0);
				if (r >= 0 || errno != ENOTTY) {
					if (recognised++ < 3)
						printf("  %s fd, request %#lx: %s\n", kinds[k], req[i],
						       r >= 0 ? "success" : strerror(errno));
					if (r > 0 && r != fd)
						close(r);
				}
			}
		}
		close(fd);
	}
	if (!tried)
		say(2, "CANNOT RUN", "no /proc/self/ns entries could be opened");
	if (recognised)
		say(1, "DEVIATES", "%d of %d malformed requests numbered 10 to 12 were not ENOTTY", recognised, tried);
	say(0, "CONFORMS", "all %d malformed requests numbered 10 to 12 were ENOTTY", tried);
}
