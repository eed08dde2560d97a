/*
 * common.h: the helpers the reproducers of this directory share; every
 * reproducer (*.c) includes it first. It defines _GNU_SOURCE and includes
 * the system headers they use, then static functions, each marked unused
 * so that a reproducer that does not call one still compiles without a
 * warning (-Wall -Wextra).
 *
 * A reproducer stays one translation unit: `cc -o repro NAME.c` builds it
 * wherever this file lies beside NAME.c (a quoted #include is looked up in
 * the source file's directory first). vm-bin.sh links all reproducers into
 * one binary: each object has its own copy of these static functions.
 * This file is not a reproducer: run.sh and vm-bin.sh build the *.c only.
 */
#ifndef DEVIATIONS_COMMON_H
#define DEVIATIONS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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
static __attribute__((unused, noreturn, format(printf, 3, 4))) void say(int code, const char *word, const char *fmt, ...)
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

/* Writes `text` to `path` in one write(): 0, or -1 with errno set. */
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

/* CLOCK_MONOTONIC, in seconds. */
static __attribute__((unused)) double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* In a forked child: closes every fd from 3 up but `a` and `b`, so that
 * no other child's pipe end stays open here. */
static __attribute__((unused)) void close_others(int a, int b)
{
	for (int fd = 3; fd < 1024; fd++)
		if (fd != a && fd != b)
			close(fd);
}

/* A held child: made by fork(), or by clone(2) with `clone_flags` (for
 * CLONE_NEWPID) when they are not 0; it runs `setup(arg)` (0: done, as
 * unshare(2) returns), tells us, and stays until `*done` closes. Its pid,
 * or -1 when setup failed (the child is reaped then). */
static __attribute__((unused)) pid_t held_child(int clone_flags, int (*setup)(void *), void *arg, int *done)
{
	int ready[2], d[2];
	char c = 0;
	if (pipe(ready) || pipe(d))
		say(3, "BROKEN", "pipe: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = clone_flags ? (pid_t)syscall(SYS_clone, clone_flags | SIGCHLD, 0, 0, 0, 0) : fork();
	if (pid < 0)
		say(3, "BROKEN", "%s(%#x): %s", clone_flags ? "clone" : "fork", clone_flags, strerror(errno));
	if (pid == 0) {
		close_others(ready[1], d[0]);
		c = setup(arg) ? 'n' : 'y';
		if (write(ready[1], &c, 1) != 1 || read(d[0], &c, 1) < 0)
			_exit(3);
		_exit(0);
	}
	close(d[0]);
	close(ready[1]);
	int ok = read(ready[0], &c, 1) == 1 && c == 'y';
	close(ready[0]);
	if (!ok) {
		close(d[1]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	*done = d[1];
	return pid;
}

/* A held_child() setup: unshare(2) of the flags `*(int *)flags`. */
static __attribute__((unused)) int unshare_setup(void *flags)
{
	return unshare(*(int *)flags);
}

/* A child that unshares `flags`, tells us, and exits when `*done` closes. */
static __attribute__((unused)) pid_t idle_child(int flags, int *done)
{
	pid_t pid = held_child(0, unshare_setup, &flags, done);
	if (pid < 0)
		say(3, "BROKEN", "unshare(%#x) in a child failed", flags);
	return pid;
}

/* Lets a held child exit and reaps it. */
static __attribute__((unused)) void end_child(pid_t pid, int done)
{
	close(done);
	waitpid(pid, NULL, 0);
}

/* For the listns(2) reproducers (listns_*.c). */

/* listns(2) (6.19) has no libc wrapper: <linux/nsfs.h>'s struct ns_id_req
 * (version 0) and the x86-64 / asm-generic system call number. */
#define SYS_LISTNS 470
#define NS_GET_ID _IOR(0xb7, 13, uint64_t)

struct ns_id_req {
	uint32_t size, spare;
	uint64_t ns_id;
	uint32_t ns_type, spare2;
	uint64_t user_ns_id;
};

/* Up to `n` ids of active namespaces of `type` after `after`. */
static __attribute__((unused)) long listns(uint64_t after, uint32_t type, uint64_t *ids, size_t n)
{
	struct ns_id_req req = { .size = sizeof req, .ns_id = after, .ns_type = type };
	return syscall(SYS_LISTNS, &req, ids, n, 0);
}

/* NS_GET_ID of /proc/<pid>/ns/<entry>; 0 on error. */
static __attribute__((unused)) uint64_t ns_id_of(pid_t pid, const char *entry)
{
	char path[64];
	uint64_t id = 0;
	snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, entry);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || ioctl(fd, NS_GET_ID, &id))
		id = 0;
	if (fd >= 0)
		close(fd);
	return id;
}

/* Exits CANNOT RUN without listns(2) or without root in the initial user
 * namespace. */
static __attribute__((unused)) void needs_listns(void)
{
	uint64_t id;
	if (listns(0, 0, &id, 1) < 0 && errno == ENOSYS)
		say(2, "CANNOT RUN", "no listns(2) (Linux 6.19+)");
	if (geteuid() != 0 || !in_initial_user_ns())
		say(2, "CANNOT RUN", "needs root in the initial user namespace");
}

#endif /* DEVIATIONS_COMMON_H */
