/*
 * mnt_ns_loop_per_cpu_ids: namespaces(7): "Bind mounting (see mount(2))
 * one of the files in this directory to somewhere else in the filesystem
 * keeps the corresponding namespace of the process specified by pid alive";
 * CLAIMS F2. The kernel refuses only binds that could make a loop: a mount
 * namespace not newer than the caller's (mnt_ns_loop()).
 *
 * Binds the /proc/[pid]/ns/mnt file of a newer mount namespace (a child's)
 * 400 times; each must succeed. Before each try the caller enters a fresh
 * mount namespace on one CPU and the child makes its own on another (CPUs
 * 0 then 1 for the first half, the other way round for the second): where
 * one CPU's batch of ids is older than the other's, one of the halves
 * makes children whose ids are lower than their parent's. On 6.18 mnt_ns_loop() compares ns ids drawn
 * from per-CPU batched cookies, not ordered by creation across CPUs, and
 * refuses some with EINVAL (with more than one CPU; random, about 1 in 40
 * on 2 CPUs).
 *
 * Build and run, with common.h (the shared helpers) beside it:
 *   cc -o repro mnt_ns_loop_per_cpu_ids.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here, 3 broken setup.
 */
#include "common.h"

#define TRIES 400

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof set, &set);
}

/* The held child's setup: on CPU `*(int *)cpu`, a new mount namespace. */
static int pin_and_unshare(void *cpu)
{
	pin(*(int *)cpu);
	return unshare(CLONE_NEWNS);
}

int main(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (unshare(CLONE_NEWNS) && (errno != EPERM || enter_user_ns() || unshare(CLONE_NEWNS)))
		say(2, "CANNOT RUN", "unshare(CLONE_NEWNS): %s (needs root or unprivileged user namespaces)", strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount("tmpfs", "/tmp", "tmpfs", 0, NULL))
		say(3, "BROKEN", "a private tmpfs on /tmp: %s", strerror(errno));
	if (write_file("/tmp/bind", "") && (errno != ENOENT || close(open("/tmp/bind", O_CREAT | O_WRONLY, 0600))))
		say(3, "BROKEN", "creating /tmp/bind: %s", strerror(errno));
	int refused = 0;
	for (int i = 0; i < TRIES; i++) {
		int done;
		char path[64];
		int here = cpus > 1 && i >= TRIES / 2, there = cpus > 1 ? !here : 0;
		/* A newer mount namespace of our own, drawn on CPU `here`. */
		pin(here);
		if (unshare(CLONE_NEWNS))
			say(3, "BROKEN", "unshare(CLONE_NEWNS): %s", strerror(errno));
		pid_t pid = held_child(0, pin_and_unshare, &there, &done);
		if (pid < 0)
			say(3, "BROKEN", "unshare(CLONE_NEWNS) in a child failed");
		/* The child's mount namespace is newer than ours. */
		snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
		if (mount(path, "/tmp/bind", NULL, MS_BIND, NULL) == 0)
			umount2("/tmp/bind", MNT_DETACH);
		else if (errno == EINVAL)
			refused++;
		else
			say(3, "BROKEN", "bind-mounting %s: %s", path, strerror(errno));
		end_child(pid, done);
	}
	if (refused)
		say(1, "DEVIATES", "%d of %d binds of a newer mount namespace's file refused with EINVAL (%ld CPUs)", refused, TRIES, cpus);
	say(0, "CONFORMS", "all %d binds of a newer mount namespace's file succeeded (%ld CPUs)", TRIES, cpus);
}
