//! Mount namespace ids (6.11+): typed wrappers of statmount(2), listmount(2)
//! and the NS_MNT_GET_INFO/NEXT/PREV ioctls, which have no libc wrapper.
