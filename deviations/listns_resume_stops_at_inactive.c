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
 * Build and run (as root), with common.h (the shared helpers) beside it:
 *   cc -o repro listns_resume_stops_at_inactive.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here (before 6.19, not root), 3 broken setup.
 */
#include "common.h"

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
