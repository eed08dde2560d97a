//! Documented deviations: where the running kernel does not do what the man
//! page says, found by a case that stays strict. Such a case still reports
//! `fail`, marked with the text here, and does not fail the run; a kernel
//! that honours the claim again simply passes it.

/// namespaces(7), "The namespace lifetime", lists "a corresponding mount of
/// an mqueue filesystem" among what keeps an IPC namespace alive.
pub const MQUEUE_MOUNT_DOES_NOT_PIN_IPC: &str = "namespaces(7) says an mqueue mount keeps its IPC namespace alive, but the \
mqueue superblock holds no reference to it: put_ipc_ns() clears the superblock's s_fs_info when the last reference \
goes (ipc/namespace.c), so the namespace is released with its last process while the mount remains (seen on 5.10.262, \
6.12.118, 6.18.44 and 7.2.13; 6.1.192 keeps it)";
