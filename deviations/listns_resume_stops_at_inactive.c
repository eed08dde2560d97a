/*
 * listns_resume_stops_at_inactive: listns(2) (6.19; no man page yet, CLAIMS
 * X5): lists the active namespaces the caller may see, in increasing id
 * order, resumable from the last id returned.
 *
 * Three new net namespaces A < B < C, each held by a process; B's process
 * is reaped and a listing resumes right after A, one id a call: it must
 * give C (or B, if still active). do_listns() looks up the first
 * namespace after A with lookup_ns_id_at(), which gives nothing when B is
 * still in the tree but no longer active, and returns ENOENT: the listing
 * ends early. Up to 50 rounds (the window is short).
 *
 * Build and run (as root): cc -o repro listns_resume_stops_at_inactive.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here (before 6.19, not root), 3 broken setup.
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

static __attribute__((unused)) void needs_listns(void)
{
	uint64_t id;
	if (listns(0, 0, &id, 1) < 0 && errno == ENOSYS)
		say(2, "CANNOT RUN", "no listns(2) (Linux 6.19+)");
	if (geteuid() != 0 || !in_initial_user_ns())
		say(2, "CANNOT RUN", "needs root in the initial user namespace");
}

/* In a forked child: closes every fd from 3 up but `a` and `b`, so that
 * no other child's pipe end stays open here. */
static __attribute__((unused)) void close_others(int a, int b)
{
	for (int fd = 3; fd < 1024; fd++)
		if (fd != a && fd != b)
			close(fd);
}

/* A child that unshares `flags`, tells us, and exits when `*done` closes. */
static __attribute__((unused)) pid_t idle_child(int flags, int *done)
{
	int ready[2], d[2];
	char c = 0;
	if (pipe(ready) || pipe(d))
		say(3, "BROKEN", "pipe: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close_others(ready[1], d[0]);
		c = unshare(flags) ? 'n' : 'y';
		if (write(ready[1], &c, 1) != 1 || read(d[0], &c, 1) < 0)
			_exit(3);
		_exit(0);
	}
	close(d[0]);
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1 || c != 'y')
		say(3, "BROKEN", "unshare(%#x) in a child failed", flags);
	close(ready[0]);
	*done = d[1];
	return pid;
}

static __attribute__((unused)) void end_child(pid_t pid, int done)
{
	close(done);
	waitpid(pid, NULL, 0);
}

#define ROUNDS 50

int main(void)
{
	needs_listns();
	for (int round = 0; round < ROUNDS; round++) {
		int done[3];
		pid_t pid[3];
		uint64_t id[3];
		for (int i = 0; i < 3; i++) {
			pid[i] = idle_child(CLONE_NEWNET, &done[i]);
			id[i] = ns_id_of(pid[i], "net");
			if (!id[i])
				say(3, "BROKEN", "NS_GET_ID of a new net namespace: %s", strerror(errno));
		}
		/* The middle namespace goes inactive (its only process is
		 * reaped); it may stay in the kernel's tree a while longer. */
		end_child(pid[1], done[1]);
		uint64_t got = 0;
		long n = listns(id[0], CLONE_NEWNET, &got, 1);
		int err = errno;
		end_child(pid[0], done[0]);
		end_child(pid[2], done[2]);
		if (n < 0 && err == ENOENT)
			say(1, "DEVIATES", "listns resuming after net namespace %llu ended with ENOENT while %llu (after it) was "
					   "active; the one between had just gone inactive (round %d)",
			    (unsigned long long)id[0], (unsigned long long)id[2], round + 1);
		if (n < 0)
			say(3, "BROKEN", "listns: %s", strerror(err));
		if (n != 1 || got <= id[0] || got > id[2])
			say(3, "BROKEN", "listns after %llu gave %ld ids (%llu), expected one up to %llu", (unsigned long long)id[0], n,
			    (unsigned long long)got, (unsigned long long)id[2]);
	}
	say(0, "CONFORMS", "%d listings resuming right before a namespace that had just gone inactive went on to the next "
			   "active one", ROUNDS);
}
