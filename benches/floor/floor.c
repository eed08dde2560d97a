/*
 * nsverify-floor: the independent floor of the benches (issue 14).
 *
 * The tightest loop for each operation `cargo bench -p nsverify-benches`
 * measures, in plain C, sharing no code with the measuring helper (no
 * protocol, no criterion, no harness): only the system calls. Each
 * operation runs N times (--iters, 2000 by default) after a few untimed
 * warm-up rounds, and one JSON line per operation gives the median, p10
 * and p90 per operation in ns, keyed by the report's figure id:
 *
 *   {"floor":"nsverify-floor","version":1,"privilege":"root","iters":2000}
 *   {"id":"clone/net","n":2000,"batch":1,"median_ns":483012.0,"p10_ns":...,"p90_ns":...}
 *   {"id":"clone/time","skipped":"clone3(CLONE_NEWTIME): Invalid argument"}
 *
 * Options: --iters N, --userns (measure in a fresh user namespace, as the
 * helper does when not root or with NSVERIFY_BENCH_USERNS=1), --cpu N (pin,
 * as NSVERIFY_BENCH_CPU pins the helper), --group G (repeatable: only the
 * operations of criterion group G: baseline, clone, unshare_fresh,
 * unshare_repeated, setns), --only ID (repeatable: only figure ID, such as
 * unshare_fresh/uts; the bench runs each figure's floor right before and
 * after criterion measures that figure). Exit status 0 unless the setup
 * itself failed.
 *
 * --serve: a server for the bench, which asks for a few iterations of one
 * figure right before each criterion sample, so that floor and nsverify
 * are measured in the same seconds of the machine's life. Each request is a
 * line "ID N" on standard input; the answer is one line as above, with the
 * N raw timings added ("samples_ns":[...]), or a "skipped" line (also for an
 * unknown ID). End-of-file ends the server.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* Calls a repeated unshare makes in one child before a fresh child takes
 * over (the helper's REPEAT_CHUNK): a call costs more the more namespaces
 * the child made before it. For user namespaces, the nesting a child goes
 * to (the helper's USER_NEST_CHUNK; the kernel stops at 32 levels). */
#define REPEAT_CHUNK 32
#define USER_NEST_CHUNK 24
/* setns and getppid are timed in batches, as one loop, like the helper. */
#define SETNS_BATCH 100
#define NULL_BATCH 1000

struct kind {
	const char *name;
	unsigned long flag;
	const char *entry; /* /proc/<pid>/ns/<entry> of a holder */
	int legacy_clone;  /* clone(2) can carry the flag; else clone3 */
};

/* The harness's kind table order (Kind::ALL). */
static const struct kind KINDS[] = {
	{"cgroup", CLONE_NEWCGROUP, "cgroup", 1},
	{"ipc", CLONE_NEWIPC, "ipc", 1},
	{"net", CLONE_NEWNET, "net", 1},
	{"mnt", CLONE_NEWNS, "mnt", 1},
	{"pid", CLONE_NEWPID, "pid", 1},
	{"user", CLONE_NEWUSER, "user", 1},
	{"uts", CLONE_NEWUTS, "uts", 1},
	{"time", CLONE_NEWTIME, "time_for_children", 0},
};
#define NKINDS (sizeof(KINDS) / sizeof(KINDS[0]))

static long iters = 2000;
static double *samples;   /* MAP_SHARED: children write their timings here */
static const char *groups[8];
static int ngroups;
static const char *only[8];
static int nonly;
static int serving;  /* --serve: answers carry the raw samples */
static int answered; /* lines printed for the current request */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether figure group/name is asked for: by --group, by --only, or by
 * neither (then every figure is). */
static int wanted(const char *group, const char *name)
{
	if (ngroups == 0 && nonly == 0)
		return 1;
	for (int i = 0; i < ngroups; i++)
		if (strcmp(groups[i], group) == 0)
			return 1;
	size_t g = strlen(group);
	for (int i = 0; i < nonly; i++)
		if (strncmp(only[i], group, g) == 0 && only[i][g] == '/' && strcmp(only[i] + g + 1, name) == 0)
			return 1;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report(const char *group, const char *name, long n, long batch)
{
	qsort(samples, n, sizeof(double), cmp);
	double median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
	printf("{\"id\":\"%s/%s\",\"n\":%ld,\"batch\":%ld,\"median_ns\":%.1f,\"p10_ns\":%.1f,\"p90_ns\":%.1f", group, name, n, batch,
	       median, samples[n / 10], samples[(n * 9) / 10]);
	if (serving)
		for (long i = 0; i < n; i++)
			printf("%s%.1f", i ? "," : ",\"samples_ns\":[", samples[i]);
	printf("%s}\n", serving ? "]" : "");
	fflush(stdout);
	answered++;
}

static void skipped(const char *group, const char *name, const char *what, int err)
{
	printf("{\"id\":\"%s/%s\",\"skipped\":\"%s: %s\"}\n", group, name, what, strerror(err));
	fflush(stdout);
	answered++;
}

/* Raw clone(2) with `flags` | SIGCHLD: returns 0 in the child. No atfork
 * handlers, as the helper's raw clone. */
static pid_t raw_clone(unsigned long flags, int clone3)
{
	if (clone3) {
		uint64_t args[11] = {0};
		args[0] = flags;   /* flags */
		args[4] = SIGCHLD; /* exit_signal */
		return (pid_t)syscall(SYS_clone3, args, 88);
	}
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
}

static int reap(pid_t pid)
{
	siginfo_t info;
	if (waitid(P_PID, pid, &info, WEXITED) < 0)
		return -1;
	return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* In a new user namespace: uid and gid 0 mapped to `uid`/`gid` outside. */
static int map_root(uid_t uid, gid_t gid)
{
	char buf[64];
	if (write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT)
		return -1;
	snprintf(buf, sizeof buf, "0 %u 1", (unsigned)uid);
	if (write_file("/proc/self/uid_map", buf) < 0)
		return -1;
	snprintf(buf, sizeof buf, "0 %u 1", (unsigned)gid);
	return write_file("/proc/self/gid_map", buf);
}

/* baseline/fork and clone/<kind>: clone + _exit + waitid, timed whole. */
static void clone_op(const char *group, const char *name, unsigned long flags, int clone3)
{
	long warm = iters / 20 + 2;
	for (long i = -warm; i < iters; i++) {
		uint64_t t0 = now_ns();
		pid_t pid = raw_clone(flags, clone3);
		if (pid == 0)
			_exit(0);
		if (pid < 0)
			return skipped(group, name, clone3 ? "clone3" : "clone", errno);
		if (reap(pid) != 0)
			return skipped(group, name, "waitid", errno ? errno : ECHILD);
		uint64_t t1 = now_ns();
		if (i >= 0)
			samples[i] = (double)(t1 - t0);
	}
	report(group, name, iters, 1);
}

/* unshare_fresh/<kind>: in a fresh child, warmed up (unshare(0) and a clock
 * read), one unshare timed alone. The child stores its time, or -errno. */
static void unshare_fresh(const struct kind *k)
{
	long warm = iters / 20 + 2;
	for (long i = -warm; i < iters; i++) {
		long slot = i < 0 ? 0 : i;
		pid_t pid = raw_clone(0, 0);
		if (pid == 0) {
			unshare(0);
			uint64_t t0 = now_ns(), t1 = t0;
			t0 = now_ns();
			int r = unshare((int)k->flag);
			t1 = now_ns();
			samples[slot] = r < 0 ? -(double)errno : (double)(t1 - t0);
			_exit(0);
		}
		if (pid < 0)
			return skipped("unshare_fresh", k->name, "clone", errno);
		if (reap(pid) != 0)
			return skipped("unshare_fresh", k->name, "the fresh child", ECHILD);
		if (samples[slot] < 0)
			return skipped("unshare_fresh", k->name, "unshare", (int)-samples[slot]);
	}
	report("unshare_fresh", k->name, iters, 1);
}

/* unshare_repeated/<kind>: in a child (warmed up by unshare(0)), unshare
 * again and again, each call timed alone; a user namespace gets its maps
 * written (untimed). A new child takes over every REPEAT_CHUNK calls
 * (USER_NEST_CHUNK for user). */
static void unshare_repeated(const struct kind *k)
{
	long chunk = k->flag == CLONE_NEWUSER ? USER_NEST_CHUNK : REPEAT_CHUNK;
	for (long start = 0; start < iters; start += chunk) {
		long end = start + chunk < iters ? start + chunk : iters;
		pid_t pid = raw_clone(0, 0);
		if (pid == 0) {
			unshare(0);
			uint64_t t0 = now_ns(), t1 = t0;
			for (long i = start; i < end; i++) {
				uid_t uid = geteuid();
				gid_t gid = getegid();
				t0 = now_ns();
				int r = unshare((int)k->flag);
				t1 = now_ns();
				if (r < 0) {
					samples[0] = -(double)errno;
					_exit(1);
				}
				samples[i] = (double)(t1 - t0);
				if (k->flag == CLONE_NEWUSER && map_root(uid, gid) < 0) {
					samples[0] = -(double)errno;
					_exit(2);
				}
			}
			_exit(0);
		}
		if (pid < 0)
			return skipped("unshare_repeated", k->name, "clone", errno);
		int status = reap(pid);
		if (status != 0)
			return skipped("unshare_repeated", k->name, status == 2 ? "writing the id maps" : "unshare",
				       samples[0] < 0 ? (int)-samples[0] : ECHILD);
	}
	report("unshare_repeated", k->name, iters, 1);
}

/* A holder: a child in a new namespace of `k` (cloned into it; for time,
 * which clone(2) cannot carry, one that unshared it and holds it as
 * time_for_children), waiting to be killed. Its ready word (0 or its
 * errno) comes back over a pipe. */
static pid_t holder(const struct kind *k, int *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return *err = errno, -1;
	pid_t parent = getpid();
	pid_t pid = raw_clone(k->legacy_clone ? k->flag : 0, 0);
	if (pid == 0) {
		/* A holder never outlives the floor: killed with it (no trace).
		 * In a new pid namespace getppid() is 0, so the check that the
		 * parent did not die before prctl applies elsewhere only. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(1);
		if (!(k->flag & CLONE_NEWPID) && getppid() != parent)
			_exit(1);
		int e = !k->legacy_clone && unshare((int)k->flag) < 0 ? errno : 0;
		if (write(p[1], &e, sizeof e) != sizeof e)
			_exit(1);
		if (e)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	int e = pid < 0 ? errno : 0;
	if (pid > 0 && read(p[0], &e, sizeof e) != sizeof e)
		e = ECHILD;
	close(p[0]);
	if (e && pid > 0) {
		kill(pid, SIGKILL);
		reap(pid);
	}
	*err = e;
	return e ? -1 : pid;
}

/* setns/<kind>: in a fresh child, setns alternating between the namespaces
 * of two holders, timed in batches of SETNS_BATCH calls. */
static void setns_toggle(const struct kind *k)
{
	int err = 0;
	pid_t a = holder(k, &err), b = -1;
	if (a > 0)
		b = holder(k, &err);
	if (a < 0 || b < 0) {
		if (a > 0) {
			kill(a, SIGKILL);
			reap(a);
		}
		return skipped("setns", k->name, "a holder of a new namespace", err);
	}
	pid_t pid = raw_clone(0, 0);
	if (pid == 0) {
		char path[64];
		int fds[2];
		pid_t holders[2] = {a, b};
		for (int j = 0; j < 2; j++) {
			snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)holders[j], k->entry);
			if ((fds[j] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
				samples[0] = -(double)errno;
				_exit(1);
			}
		}
		/* Warm-up, and a check that both are usable. */
		for (int j = 0; j < 2 * SETNS_BATCH; j++)
			if (setns(fds[j % 2], (int)k->flag) < 0) {
				samples[0] = -(double)errno;
				_exit(2);
			}
		for (long i = 0; i < iters; i++) {
			uint64_t t0 = now_ns();
			for (int j = 0; j < SETNS_BATCH; j++)
				setns(fds[j % 2], (int)k->flag);
			samples[i] = (double)(now_ns() - t0) / SETNS_BATCH;
		}
		_exit(0);
	}
	int status = pid < 0 ? -1 : reap(pid);
	int e = pid < 0 ? errno : samples[0] < 0 ? (int)-samples[0] : ECHILD;
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	reap(a);
	reap(b);
	if (status != 0)
		return skipped("setns", k->name, status == 1 ? "open" : "setns", e);
	report("setns", k->name, iters, SETNS_BATCH);
}

static void null_syscall(void)
{
	for (long i = -(iters / 20 + 2); i < iters; i++) {
		uint64_t t0 = now_ns();
		for (int j = 0; j < NULL_BATCH; j++)
			syscall(SYS_getppid);
		if (i >= 0)
			samples[i] = (double)(now_ns() - t0) / NULL_BATCH;
	}
	report("baseline", "null_syscall", iters, NULL_BATCH);
}

/* Every figure asked for by --group and --only, `iters` times each. */
static void run_wanted(void)
{
	if (wanted("baseline", "null_syscall"))
		null_syscall();
	if (wanted("baseline", "fork"))
		clone_op("baseline", "fork", 0, 0);
	unsigned long container = 0;
	for (size_t i = 0; i < NKINDS; i++) {
		if (wanted("clone", KINDS[i].name))
			clone_op("clone", KINDS[i].name, KINDS[i].flag, !KINDS[i].legacy_clone);
		if (KINDS[i].legacy_clone)
			container |= KINDS[i].flag;
	}
	if (wanted("clone", "container"))
		clone_op("clone", "container", container, 0);
	for (size_t i = 0; i < NKINDS; i++)
		if (wanted("unshare_fresh", KINDS[i].name))
			unshare_fresh(&KINDS[i]);
	for (size_t i = 0; i < NKINDS; i++)
		if (KINDS[i].flag != CLONE_NEWPID && wanted("unshare_repeated", KINDS[i].name))
			unshare_repeated(&KINDS[i]);
	for (size_t i = 0; i < NKINDS; i++)
		if (KINDS[i].flag != CLONE_NEWUSER && wanted("setns", KINDS[i].name))
			setns_toggle(&KINDS[i]);
}

/* The largest N a --serve request may ask for. */
#define SERVE_MAX 100000

/* --serve: "ID N" per line on stdin, one answer line each. */
static int serve(void)
{
	char line[256], id[128];
	long n;
	while (fgets(line, sizeof line, stdin)) {
		answered = 0;
		if (sscanf(line, "%127s %ld", id, &n) != 2 || n < 2 || n > SERVE_MAX) {
			printf("{\"id\":\"?\",\"skipped\":\"bad request (expected ID N, 2 <= N <= %d)\"}\n", SERVE_MAX);
			fflush(stdout);
			continue;
		}
		iters = n;
		only[0] = id;
		nonly = 1;
		run_wanted();
		if (!answered) {
			printf("{\"id\":\"%s\",\"skipped\":\"no such figure\"}\n", id);
			fflush(stdout);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int userns = 0, cpu = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
			iters = atol(argv[++i]);
		else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc)
			cpu = atoi(argv[++i]);
		else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc && ngroups < 8)
			groups[ngroups++] = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && nonly < 8)
			only[nonly++] = argv[++i];
		else if (strcmp(argv[i], "--userns") == 0)
			userns = 1;
		else if (strcmp(argv[i], "--serve") == 0)
			serving = 1;
		else {
			fprintf(stderr, "usage: nsverify-floor [--iters N] [--userns] [--cpu N] [--group G]... [--only ID]... [--serve]\n");
			return 2;
		}
	}
	if (iters < 2) {
		fprintf(stderr, "nsverify-floor: --iters must be at least 2\n");
		return 2;
	}
	samples = mmap(NULL, sizeof(double) * (size_t)(serving ? SERVE_MAX : iters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (samples == MAP_FAILED) {
		perror("nsverify-floor: mmap");
		return 1;
	}
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof set, &set) < 0) {
			perror("nsverify-floor: sched_setaffinity");
			return 1;
		}
	}
	if (userns) {
		uid_t uid = geteuid();
		gid_t gid = getegid();
		if (unshare(CLONE_NEWUSER) < 0 || map_root(uid, gid) < 0) {
			perror("nsverify-floor: entering a fresh user namespace");
			return 1;
		}
	}
	printf("{\"floor\":\"nsverify-floor\",\"version\":1,\"privilege\":\"%s\",\"iters\":%ld}\n",
	       userns ? "user_namespace" : "root", iters);
	fflush(stdout);
	if (serving)
		return serve();
	run_wanted();
	return 0;
}
