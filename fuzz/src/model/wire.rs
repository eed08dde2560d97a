//! How the model's typed values cross the channel between driver, agent
//! and processes: serde forms of harness's [`NsFlags`] (its bits) and
//! [`NsEntry`] (its `/proc/[pid]/ns` name), for `#[serde(with = ...)]`
//! fields of [`super::action::Action`] and [`super::world`]'s commands.

use harness::flags::NsFlags;
use harness::NsEntry;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// [`NsFlags`] as its `u64` bits.
pub mod flags {
    use super::*;

    /// Writes the bits.
    pub fn serialize<S: Serializer>(flags: &NsFlags, s: S) -> Result<S::Ok, S::Error> {
        flags.bits().serialize(s)
    }

    /// Reads the bits back, unchecked (they were written by [`serialize`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NsFlags, D::Error> {
        u64::deserialize(d).map(NsFlags::from_bits_retain)
    }
}

/// [`NsEntry`] as its name (`"uts"`, `"pid_for_children"` ...).
pub mod entry {
    use super::*;

    /// Writes the name.
    pub fn serialize<S: Serializer>(entry: &NsEntry, s: S) -> Result<S::Ok, S::Error> {
        entry.name().serialize(s)
    }

    /// Parses the name back.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NsEntry, D::Error> {
        let name = String::deserialize(d)?;
        NsEntry::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("not a /proc/[pid]/ns entry: {name:?}")))
    }
}
