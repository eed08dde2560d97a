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
 * Build and run (as root), with common.h (the shared helpers) beside it:
 *   cc -o repro listns_pid_parent_not_kept_active.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here (before 6.19, not root), 3 broken setup.
 */
#include "common.h"

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

/* In P (held_child() made it with CLONE_NEWPID): the child pid namespace
 * C and C's init, which ends when P, init of its parent, does. */
static int parent_setup(void *unused)
{
	(void)unused;
	if (unshare(CLONE_NEWPID))
		return -1;
	if (fork() == 0)
		for (;;)
			pause();
	return 0;
}

/* P: init of a new pid namespace, which unshares a child pid namespace C
 * (its pid_for_children) and forks C's init, then waits for `*done`. */
static pid_t parent_and_child(int *done, uint64_t *p, uint64_t *c, int *c_fd)
{
	char path[64];
	pid_t pid = held_child(CLONE_NEWPID, parent_setup, NULL, done);
	if (pid < 0)
		say(3, "BROKEN", "unshare(CLONE_NEWPID) in a new pid namespace failed");
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
