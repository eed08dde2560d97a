//! pid namespaces: clone3(2) set_tid at several levels, signal information,
//! and the pid levels of a process (NSpid), for pid_namespaces(7) cases.
