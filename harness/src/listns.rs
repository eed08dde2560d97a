//! listns(2) (6.19): a typed wrapper, and the raw-argument call the fuzz suite uses.
