//! Placeholder until the comparison lands.
fn main() {}
