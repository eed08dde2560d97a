/*
 * listns_pid_parent_not_kept_active: CLAIMS X6 (from the kernel's
 * selftests; listns(2) has no man page yet): "a namespace is active while a
 * process, an nsfs fd or bind mount, or an active namespace it owns or
 * parents holds it".
 *
 * A pid namespace P whose init makes a child pid namespace C (with its own
 * init); we hold C by an fd and let P's processes end. P must stay listed
 * while C is active. The kernel passes active references on to the owning
 * user namespace only, so P goes inactive (a control without the fd shows
 * that inactive namespaces leave the listing).
 *
 * Build and run (as root): cc -o repro listns_pid_parent_not_kept_active.c && ./repro
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

/* Whether pid namespace `id` is listed (a full listing from the start). */
static int listed(uint64_t id)
{
	static uint64_t ids[4096];
	long n = listns(0, CLONE_NEWPID, ids, sizeof ids / sizeof *ids);
	if (n < 0)
		say(3, "BROKEN", "listns of pid namespaces: %s", strerror(errno));
	for (long i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* P: init of a new pid namespace, which unshares a child pid namespace C
 * (its pid_for_children) and forks C's init, then waits for `*done`. */
static pid_t parent_and_child(int *done, uint64_t *p, uint64_t *c, int *c_fd)
{
	int ready[2], d[2];
	char ch = 0, path[64];
	if (pipe(ready) || pipe(d))
		say(3, "BROKEN", "pipe: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		close_others(ready[1], d[0]);
		ch = 'y';
		if (unshare(CLONE_NEWPID))
			ch = 'n';
		else if (fork() == 0) {
			/* C's init: ends when P, init of its parent, does. */
			for (;;)
				pause();
		}
		if (write(ready[1], &ch, 1) != 1 || read(d[0], &ch, 1) < 0)
			_exit(3);
		_exit(0);
	}
	if (pid < 0)
		say(3, "BROKEN", "clone(CLONE_NEWPID): %s", strerror(errno));
	close(d[0]);
	close(ready[1]);
	if (read(ready[0], &ch, 1) != 1 || ch != 'y')
		say(3, "BROKEN", "unshare(CLONE_NEWPID) in a new pid namespace failed");
	close(ready[0]);
	*done = d[1];
	*p = ns_id_of(pid, "pid");
	*c = ns_id_of(pid, "pid_for_children");
	snprintf(path, sizeof path, "/proc/%d/ns/pid_for_children", (int)pid);
	*c_fd = open(path, O_RDONLY);
	if (!*p || !*c || *c_fd < 0 || *p == *c)
		say(3, "BROKEN", "ids or fd of the pid namespaces: %s", strerror(errno));
	return pid;
}

int main(void)
{
	needs_listns();
	int done, control_done, c_fd, control_c_fd;
	uint64_t p, c, control_p, control_c;
	pid_t subject = parent_and_child(&done, &p, &c, &c_fd);
	pid_t control = parent_and_child(&control_done, &control_p, &control_c, &control_c_fd);
	close(control_c_fd);
	if (!listed(p) || !listed(control_p))
		say(3, "BROKEN", "the new pid namespaces are not listed while their processes live");
	end_child(subject, done);
	end_child(control, control_done);
	/* The control, whose child namespace nothing holds, goes inactive. */
	double end = now() + 10;
	while (listed(control_p) && now() < end)
		usleep(2000);
	if (listed(control_p))
		say(3, "BROKEN", "the control pid namespace is still listed 10 s after its processes exited");
	if (!listed(c))
		say(3, "BROKEN", "the child pid namespace %llu, held by an fd, is not listed", (unsigned long long)c);
	if (listed(p))
		say(0, "CONFORMS", "pid namespace %llu stays active while its child pid namespace %llu is (held by an fd)",
		    (unsigned long long)p, (unsigned long long)c);
	say(1, "DEVIATES", "pid namespace %llu went inactive after its processes exited although its child pid namespace %llu "
			   "is active (held by an fd)", (unsigned long long)p, (unsigned long long)c);
}
