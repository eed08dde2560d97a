/*
 * uid_map_modulo_2_32 (undocumented behaviour): user_namespaces(7): each
 * line of uid_map "takes the form of three numbers delimited by white
 * space", user IDs being 32-bit.
 *
 * Writes "4294967296 <euid> 1" (first id 2^32) to the uid_map of a new
 * user namespace. The kernel reads each number with simple_strtoul() and
 * stores it in a u32, so it is taken modulo 2^32: the line is accepted as
 * "0 <euid> 1". The man page says nothing of it.
 *
 * Build and run (any uid), with common.h (the shared helpers) beside it:
 *   cc -o repro uid_map_modulo_2_32.c && ./repro
 * Exit: 0 CONFORMS (EINVAL), 1 DEVIATES (taken modulo 2^32), 2 cannot run here, 3 broken setup.
 */
#include "common.h"

int main(void)
{
	int done, flags = CLONE_NEWUSER;
	pid_t child = held_child(0, unshare_setup, &flags, &done);
	if (child < 0)
		say(2, "CANNOT RUN", "unshare(CLONE_NEWUSER) failed (unprivileged user namespaces forbidden?)");
	/* Our effective uid, mapped to uid 4294967296 inside: 0 modulo 2^32. */
	char path[64], text[64], back[128] = "";
	snprintf(path, sizeof path, "/proc/%d/uid_map", (int)child);
	snprintf(text, sizeof text, "4294967296 %u 1\n", (unsigned)geteuid());
	int r = write_file(path, text), err = errno;
	FILE *f = fopen(path, "r");
	if (f && !fgets(back, sizeof back, f))
		back[0] = 0;
	if (f)
		fclose(f);
	end_child(child, done);
	if (r && err == EINVAL)
		say(0, "CONFORMS", "uid_map line \"4294967296 %u 1\" refused with EINVAL (not a 32-bit id)", (unsigned)geteuid());
	if (r)
		say(3, "BROKEN", "writing uid_map: %s", strerror(err));
	back[strcspn(back, "\n")] = 0;
	unsigned long first = 1, lower = 0, count = 0;
	if (sscanf(back, "%lu %lu %lu", &first, &lower, &count) == 3 && first == 0)
		say(1, "DEVIATES", "uid_map line \"4294967296 %u 1\" accepted and read back as \"%lu %lu %lu\" (taken modulo 2^32)",
		    (unsigned)geteuid(), first, lower, count);
	say(3, "BROKEN", "uid_map accepted, read back as \"%s\"", back);
}
