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
 * Build and run, with common.h (the shared helpers) beside it:
 *   cc -o repro ns_mnt_ioctl_number_only.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here, 3 broken setup.
 */
#include "common.h"

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
