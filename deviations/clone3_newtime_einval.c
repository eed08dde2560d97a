/*
 * clone3_newtime_einval: clone(2) lists "CLONE_NEWTIME (since Linux 5.6)"
 * among the flags of clone3(); CLAIMS A1: clone() with CLONE_NEW* flags
 * starts the child in new namespaces of those types.
 *
 * clone3(CLONE_NEWUSER | CLONE_NEWTIME) must start a child in a new time
 * namespace. From 5.6 until a402f1e35313 (6.3; stable 6.2.7, 6.1.20,
 * 5.15.103, 5.10.175) it was refused with EINVAL.
 *
 * Build and run, with common.h (the shared helpers) beside it:
 *   cc -o repro clone3_newtime_einval.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here, 3 broken setup.
 */
#include "common.h"
#include <linux/sched.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif

struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

int main(void)
{
	struct stat self, child;
	if (stat("/proc/self/ns/time", &self))
		say(2, "CANNOT RUN", "no time namespaces here (Linux 5.6+ with CONFIG_TIME_NS)");
	struct clone3_args args = { .flags = CLONE_NEWUSER | CLONE_NEWTIME, .exit_signal = SIGCHLD };
	int pipefd[2];
	if (pipe(pipefd))
		say(3, "BROKEN", "pipe: %s", strerror(errno));
	fflush(stdout);
	long pid = syscall(__NR_clone3, &args, sizeof args);
	if (pid == 0) {
		/* The child: report whether its time namespace differs. */
		char r = (stat("/proc/self/ns/time", &child) == 0 && child.st_ino != self.st_ino) ? 'y' : 'n';
		if (write(pipefd[1], &r, 1) != 1)
			_exit(3);
		_exit(0);
	}
	if (pid < 0 && errno == ENOSYS)
		say(2, "CANNOT RUN", "no clone3() (Linux 5.3+)");
	if (pid < 0 && errno == EINVAL)
		say(1, "DEVIATES", "clone3(CLONE_NEWUSER | CLONE_NEWTIME) refused with EINVAL");
	if (pid < 0)
		say(2, "CANNOT RUN", "clone3(CLONE_NEWUSER | CLONE_NEWTIME): %s (unprivileged user namespaces forbidden?)", strerror(errno));
	char r = 0;
	close(pipefd[1]);
	if (read(pipefd[0], &r, 1) != 1)
		r = 0;
	waitpid(pid, NULL, 0);
	if (r == 'y')
		say(0, "CONFORMS", "clone3(CLONE_NEWUSER | CLONE_NEWTIME) started a child in a new time namespace");
	say(3, "BROKEN", "clone3 succeeded but the child's time namespace is %s", r == 'n' ? "its parent's" : "unknown");
}
