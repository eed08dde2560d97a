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
 * Build and run, with common.h (the shared helpers) beside it:
 *   cc -o repro pidfd_info_request_number_only.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here, 3 broken setup.
 */
#include "common.h"

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
