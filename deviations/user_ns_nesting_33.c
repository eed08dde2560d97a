/*
 * user_ns_nesting_33 (undocumented behaviour): user_namespaces(7): "The
 * kernel imposes (since Linux 3.11) a limit of 32 nested levels of user
 * namespaces."
 *
 * Counts the user namespaces that can be nested below the initial one
 * (unshare(CLONE_NEWUSER) until refused). create_user_ns() refuses a
 * parent whose level is above 32, so 33 levels can be created: the man
 * page says 32.
 *
 * Build and run (from the initial user namespace, any uid), with common.h
 * (the shared helpers) beside it:
 *   cc -o repro user_ns_nesting_33.c && ./repro
 * Exit: 0 CONFORMS (32), 1 DEVIATES (another depth), 2 cannot run here, 3 broken setup.
 */
#include "common.h"

int main(void)
{
	if (!in_initial_user_ns())
		say(2, "CANNOT RUN", "not in the initial user namespace: the depth is counted from it");
	int depth = 0, err = 0;
	for (;;) {
		if (enter_user_ns()) {
			err = errno;
			break;
		}
		if (++depth > 64)
			say(3, "BROKEN", "user namespaces nest deeper than 64 levels: no refusal");
	}
	if (depth == 0)
		say(2, "CANNOT RUN", "unshare(CLONE_NEWUSER): %s (unprivileged user namespaces forbidden?)", strerror(err));
	if (err != ENOSPC && err != EUSERS)
		say(3, "BROKEN", "level %d refused with %s, not ENOSPC (EUSERS before 4.9)", depth + 1, strerror(err));
	if (depth == 32)
		say(0, "CONFORMS", "32 nested user namespaces, the 33rd refused (%s)", strerror(err));
	say(1, "DEVIATES", "%d nested user namespaces below the initial one, not 32; the next refused (%s)", depth, strerror(err));
}
