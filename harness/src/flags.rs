//! `CLONE_NEW*` flag sets: printing and parsing (clone(2), unshare(2)).

use crate::kind::{Kind, KINDS};

/// Names the `CLONE_NEW*` bits of `flags`, then any other bits in hex;
/// `0` for an empty set.
pub fn describe(flags: u64) -> String {
    let mut parts: Vec<String> = KINDS.iter().filter(|i| flags & i.flag != 0).map(|i| i.flag_name.to_string()).collect();
    let rest = flags & !Kind::flags_of(&Kind::ALL);
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

/// Why a flag list did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid namespace flag {0:?}: expected a kind (cgroup, ipc, net, mnt, pid, user, uts, time), a CLONE_NEW* name, or a hex number")]
pub struct FlagParseError(pub String);

/// Parses `uts|CLONE_NEWPID,net` or `0x20000000` into a flag set.
pub fn parse(text: &str) -> Result<u64, FlagParseError> {
    let mut flags = 0;
    for word in text.split(['|', ',', '+']).map(str::trim).filter(|w| !w.is_empty()) {
        let bit = if let Some(hex) = word.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).map_err(|_| FlagParseError(word.into()))?
        } else if let Some(info) = KINDS.iter().find(|i| i.flag_name.eq_ignore_ascii_case(word) || i.proc_name == word) {
            info.flag
        } else {
            return Err(FlagParseError(word.into()));
        };
        flags |= bit;
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let all = Kind::flags_of(&Kind::ALL);
        assert_eq!(parse(&describe(all)).unwrap(), all);
        assert_eq!(describe(0), "0");
        assert_eq!(describe(Kind::Uts.flag() | 0x1), "CLONE_NEWUTS|0x1");
        assert_eq!(parse("uts|pid").unwrap(), Kind::Uts.flag() | Kind::Pid.flag());
        assert!(parse("nosuch").is_err());
        assert!(parse("0xzz").is_err());
    }
}
