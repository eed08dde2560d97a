//! pidfds and namespaces: the PIDFD_GET_<kind>_NAMESPACE ioctls (6.11).
