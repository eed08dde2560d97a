/*
 * mqueue_mount_does_not_pin_ipc: namespaces(7), "The namespace lifetime":
 * a namespace stays alive while "It is an IPC namespace, and a
 * corresponding mount of an mqueue filesystem (see mq_overview(7)) refers
 * to this namespace." (CLAIMS F6)
 *
 * In our own user namespace with max_ipc_namespaces set to 1, a subject
 * process makes new ipc and mount namespaces and mounts mqueue; we hold its
 * mount namespace by an fd and let it exit. While the ipc namespace is
 * alive, one more cannot be created (ENOSPC). The kernel releases it at
 * once: the mqueue superblock holds no reference (put_ipc_ns() clears it,
 * mq_clear_sbinfo()).
 *
 * Build and run, with common.h (the shared helpers) beside it:
 *   cc -o repro mqueue_mount_does_not_pin_ipc.c && ./repro
 * Exit: 0 CONFORMS, 1 DEVIATES, 2 cannot run here, 3 broken setup.
 */
#include "common.h"

/* Seconds the subject must stay counted after its last process exits. */
#define WINDOW 5.0

/* The subject's setup: new ipc and mount namespaces, an mqueue mount in
 * the latter referring to the former. */
static int subject_setup(void *unused)
{
	(void)unused;
	return unshare(CLONE_NEWIPC | CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	       mount("tmpfs", "/tmp", "tmpfs", 0, NULL) || mkdir("/tmp/mq", 0700) || mount("mqueue", "/tmp/mq", "mqueue", 0, NULL);
}

/* Whether one more ipc namespace can be created now: 1 yes, 0 ENOSPC (the
 * limit of 1 is taken), -1 another error. */
static int one_more(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWIPC) == 0 ? 0 : errno == ENOSPC ? 1 : 2);
	int status = 0;
	waitpid(pid, &status, 0);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 2;
	return code == 0 ? 1 : code == 1 ? 0 : -1;
}

/* Polls one_more() until it gives 1 or `seconds` pass: whether it did. */
static int released_within(double seconds)
{
	double end = now() + seconds;
	do {
		int r = one_more();
		if (r < 0)
			say(3, "BROKEN", "unshare(CLONE_NEWIPC): neither success nor ENOSPC");
		if (r == 1)
			return 1;
		usleep(2000);
	} while (now() < end);
	return 0;
}

int main(void)
{
	/* Our own user namespace: its max_ipc_namespaces is ours to set. */
	if (enter_user_ns())
		say(2, "CANNOT RUN", "a new user namespace: %s (unprivileged user namespaces forbidden?)", strerror(errno));
	if (write_file("/proc/sys/user/max_ipc_namespaces", "1"))
		say(2, "CANNOT RUN", "setting max_ipc_namespaces to 1 in our user namespace: %s (Linux 4.9+)", strerror(errno));
	int done;
	char path[64];
	pid_t pid = held_child(0, subject_setup, NULL, &done);
	if (pid < 0)
		say(3, "BROKEN", "the subject could not make its namespaces and mount mqueue");
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
	int mnt = open(path, O_RDONLY);
	if (mnt < 0)
		say(3, "BROKEN", "opening %s: %s", path, strerror(errno));
	if (one_more() != 0)
		say(3, "BROKEN", "with the subject alive, one more ipc namespace was not refused with ENOSPC");
	/* The subject's last process exits; its mount namespace, with the
	 * mqueue mount, stays held by our fd. */
	end_child(pid, done);
	if (released_within(WINDOW))
		say(1, "DEVIATES", "the ipc namespace was released with its last process although an mqueue mount "
				   "referring to it remains (its mount namespace held by an fd)");
	close(mnt);
	if (!released_within(4 * WINDOW))
		say(3, "BROKEN", "the ipc namespace was not released even after its mount namespace was closed");
	say(0, "CONFORMS", "the mqueue mount kept its ipc namespace alive for %.0f s; it was released with the mount", WINDOW);
}
