/*
 * uid_map_range_one_extent (undocumented behaviour): user_namespaces(7):
 * a writer with CAP_SETUID in the parent user namespace "can make mappings
 * to arbitrary user IDs (group IDs) in the parent user namespace"; the ids
 * must be mapped there.
 *
 * In a user namespace whose uid_map is "0 0 1\n1 424242 1" (ids 0 and 1
 * mapped, in two extents), a child map "0 0 2" names ids 0 and 1 of it,
 * both mapped. The kernel (new_idmap_permitted(), map_id_range_down())
 * needs the whole range inside one extent of the parent map and refuses it
 * with EPERM, while "0 0 1\n1 1 1" (the same ids, one line each) is
 * accepted. The man page does not say so.
 *
 * Build and run (as root), with common.h (the shared helpers) beside it:
 *   cc -o repro uid_map_range_one_extent.c && ./repro
 * Exit: 0 CONFORMS (accepted), 1 DEVIATES (EPERM), 2 cannot run here, 3 broken setup.
 */
#include "common.h"

/* Writes `text` to the uid_map of a new child user namespace (a forked
 * child unshares it); 0 or the errno. */
static int map_child(const char *text)
{
	int done, flags = CLONE_NEWUSER;
	char path[64];
	pid_t pid = held_child(0, unshare_setup, &flags, &done);
	if (pid < 0)
		return ECHILD;
	snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
	int r = write_file(path, text) ? errno : 0;
	end_child(pid, done);
	return r;
}

int main(void)
{
	if (geteuid() != 0 || !in_initial_user_ns())
		say(2, "CANNOT RUN", "needs root in the initial user namespace (a map of two extents needs CAP_SETUID there)");
	int up[2], down[2], results[2];
	if (pipe(up) || pipe(down) || pipe(results))
		say(3, "BROKEN", "pipe: %s", strerror(errno));
	fflush(stdout);
	pid_t middle = fork();
	if (middle == 0) {
		/* The middle user namespace, whose ids 0 and 1 map to 0 and
		 * 424242 outside: two extents. */
		char c = unshare(CLONE_NEWUSER) ? 'n' : 'y';
		if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1 || c != 'm')
			_exit(3);
		/* Ids 0 and 1 of the middle namespace, in one line of the
		 * child's map; then the control: the same ids, one line each. */
		int r[2] = { map_child("0 0 2\n"), map_child("0 0 1\n1 1 1\n") };
		_exit(write(results[1], r, sizeof r) == sizeof r ? 0 : 3);
	}
	close(results[1]);
	char c = 0, path[64];
	if (read(up[0], &c, 1) != 1 || c != 'y')
		say(3, "BROKEN", "unshare(CLONE_NEWUSER) in the middle process failed");
	snprintf(path, sizeof path, "/proc/%d/uid_map", (int)middle);
	if (write_file(path, "0 0 1\n1 424242 1\n"))
		say(3, "BROKEN", "writing the middle uid_map \"0 0 1\\n1 424242 1\": %s", strerror(errno));
	snprintf(path, sizeof path, "/proc/%d/gid_map", (int)middle);
	if (write_file(path, "0 0 1\n"))
		say(3, "BROKEN", "writing the middle gid_map: %s", strerror(errno));
	c = 'm';
	int r[2] = { -1, -1 };
	if (write(down[1], &c, 1) != 1 || read(results[0], r, sizeof r) != sizeof r)
		say(3, "BROKEN", "the middle process did not report");
	waitpid(middle, NULL, 0);
	if (r[1] != 0)
		say(3, "BROKEN", "control: \"0 0 1\\n1 1 1\" refused: %s", strerror(r[1]));
	if (r[0] == 0)
		say(0, "CONFORMS", "\"0 0 2\" over a parent map \"0 0 1\\n1 424242 1\" accepted: both ids are mapped in the parent");
	if (r[0] == EPERM)
		say(1, "DEVIATES", "\"0 0 2\" over a parent map \"0 0 1\\n1 424242 1\" refused with EPERM, though ids 0 and 1 are "
				   "both mapped in the parent (\"0 0 1\\n1 1 1\" is accepted): a range must fit one extent");
	say(3, "BROKEN", "\"0 0 2\" refused with %s", strerror(r[0]));
}
