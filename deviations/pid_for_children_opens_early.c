/*
 * pid_for_children_opens_early: namespaces(7), /proc/[pid]/ns/pid_for_children:
 * "The symbolic link gains a value only after the first child process is
 * created in the namespace."
 *
 * After unshare(CLONE_NEWPID), before any child exists, opening the
 * caller's pid_for_children must fail (ENOENT). Kernels that open it at
 * once, naming the new namespace, deviate.
 *
 * Build and run, with common.h (the shared helpers) beside it:
 *   cc -o repro pid_for_children_opens_early.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here, 3 broken setup.
 */
#include "common.h"

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
