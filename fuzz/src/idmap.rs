//! uid_map/gid_map text fuzzing (user_namespaces(7), "User and group ID
//! mappings: uid_map and gid_map"): random map texts (ranges, overlaps,
//! too many lines, garbage) are written to the maps of a new user
//! namespace, each result checked against the rules below.

use harness::peer::Spawn;
use harness::probe::KernelVersion;
use harness::userns::{write_map_once, MapFile};
use harness::{Case, CaseError, Errno, Kind, Privilege, Proc, Requires};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use crate::run::{run_property, verdict, Failure, Property};
use crate::table::Expect;

const CASES: u32 = 200;

/// The id-map fuzzing case.
pub fn cases() -> Vec<Case> {
    let n = crate::run::case_count(CASES);
    vec![Case::new(
        "fuzz.args.id_map_text",
        &["T2.user"],
        "random uid_map/gid_map texts, and a second write: each result follows user_namespaces(7)'s rules",
        id_map_text,
    )
    .requires(Requires::kinds(&[Kind::User]).privilege(Privilege::Admin))
    .timeout(std::time::Duration::from_millis(10_000 + 50 * u64::from(n)))]
}

/// One input: which map, the first text, and an optional second write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapWrite {
    /// gid_map instead of uid_map.
    pub gid: bool,
    /// The first text written.
    pub first: String,
    /// A second text written to the same map after the first.
    pub second: Option<String>,
}

/// Most lines of a map: 340 since 4.15 (UID_GID_MAP_MAX_EXTENTS), 5 before.
pub fn max_lines(host: &harness::host::Host) -> usize {
    if host.at_least(4, 15) {
        340
    } else {
        5
    }
}

/// A line split out of a map text, as the kernel splits it.
fn lines(text: &str) -> Vec<&str> {
    // Lines end at '\n'; a final '\n' ends the last line (no empty line after it).
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n').collect()
}

/// The kernel's number: decimal digits (no sign, no base prefix), read as
/// an unsigned long and stored in a u32, so taken modulo 2^32. Up to 6.18
/// the reader (simple_strtoul) also wraps past 2^64; on 7.2 a number past
/// 2^64-1 makes the line malformed (EINVAL). Where between the two that
/// changed is not known here: 6.19 and later are expected to behave as 7.2
/// (a kernel that does not is reported by this fuzzer). Returns the value
/// and the rest of the text, or `None` for a number the kernel refuses.
fn number(s: &str) -> Option<(u32, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let fits_u64 = s[..digits].bytes().try_fold(0u64, |v, d| v.checked_mul(10)?.checked_add(u64::from(d - b'0'))).is_some();
    if !fits_u64 && KernelVersion::running() >= KernelVersion::new(6, 19) {
        return None;
    }
    let v = s[..digits].bytes().fold(0u32, |v, d| v.wrapping_mul(10).wrapping_add(u32::from(d - b'0')));
    Some((v, &s[digits..]))
}

fn is_space(c: char) -> bool {
    // The kernel's isspace(): ' ', \t, \n, \v, \f, \r.
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Parses one line as user_namespaces(7) describes it: three numbers
/// separated by white space. `None`: malformed.
fn parse_line(line: &str) -> Option<(u32, u32, u32)> {
    let mut rest = line;
    let mut out = [0u32; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        rest = rest.trim_start_matches(is_space);
        let (v, r) = number(rest)?;
        // Each number must be followed by white space, the last by white
        // space or the end of the line.
        match r.chars().next() {
            Some(c) if is_space(c) => {}
            None if i == 2 => {}
            _ => return None,
        }
        *slot = v;
        rest = r;
    }
    rest.trim_start_matches(is_space).is_empty().then_some((out[0], out[1], out[2]))
}

/// The ids (as inside ranges of our own map) that may be mapped to.
fn own_map(gid: bool) -> Vec<(u32, u32)> {
    let path = if gid { "/proc/self/gid_map" } else { "/proc/self/uid_map" };
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() == 3).then(|| (f[0] as u32, f[2] as u32))
        })
        .collect()
}

/// The documented outcome of writing `text` to a map that is still unset,
/// by a writer with CAP_SETUID/CAP_SETGID in the parent user namespace whose
/// own map's inside ranges are `parent`:
/// - 4096 bytes or more: EINVAL;
/// - a malformed line (not three decimal numbers separated by white space),
///   an empty map, a count of 0, a start of 4294967295, a range that wraps
///   past 2^32, two lines whose ranges overlap on either side, or more
///   lines than allowed: EINVAL;
/// - a range of outside ids not mapped in the parent user namespace: EPERM;
/// - else success.
///
/// Numbers are taken modulo 2^32 (the kernel reads them with
/// simple_strtoul into a u32; user_namespaces(7) says nothing of it: a
/// finding reported in fuzz/README.md).
pub fn expected_first(text: &str, parent: &[(u32, u32)], max_lines: usize) -> Expect {
    let einval = Expect::Err(Errno::EINVAL);
    if text.len() >= 4096 {
        return einval;
    }
    let mut extents: Vec<(u32, u32, u32)> = Vec::new();
    for line in lines(text) {
        let Some((first, lower, count)) = parse_line(line) else {
            return einval;
        };
        if first == u32::MAX || lower == u32::MAX {
            return einval;
        }
        if first.wrapping_add(count) <= first || lower.wrapping_add(count) <= lower {
            return einval;
        }
        let overlaps =
            |a: u32, b: u32, n: u32, m: u32| u64::from(a) < u64::from(b) + u64::from(m) && u64::from(b) < u64::from(a) + u64::from(n);
        if extents.iter().any(|&(f, l, c)| overlaps(first, f, count, c) || overlaps(lower, l, count, c)) {
            return einval;
        }
        if extents.len() == max_lines {
            return einval;
        }
        extents.push((first, lower, count));
    }
    if extents.is_empty() {
        return einval;
    }
    let mapped = |lower: u32, count: u32| {
        parent.iter().any(|&(start, len)| lower >= start && u64::from(lower) + u64::from(count) <= u64::from(start) + u64::from(len))
    };
    if extents.iter().any(|&(_, lower, count)| !mapped(lower, count)) {
        return Expect::Err(Errno::EPERM);
    }
    Expect::Ok
}

/// A second write: EINVAL if 4096 bytes or more, else EPERM once the map
/// is set ("a map may be written only once", user_namespaces(7)); while it
/// is still unset, as a first write.
pub fn expected_second(text: &str, first_succeeded: bool, parent: &[(u32, u32)], max_lines: usize) -> Expect {
    if text.len() >= 4096 {
        Expect::Err(Errno::EINVAL)
    } else if first_succeeded {
        Expect::Err(Errno::EPERM)
    } else {
        expected_first(text, parent, max_lines)
    }
}

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop_oneof![Just(0u64), Just(1), Just(2), Just(10), Just(1000), Just(65534), Just(65535), Just(4294967294), Just(4294967295)]
            .prop_map(|v| v.to_string()),
        2 => any::<u32>().prop_map(|v| v.to_string()),
        1 => prop_oneof![Just(4294967296u64), Just(4294967297), Just(u64::MAX)].prop_map(|v| v.to_string()),
        1 => Just("18446744073709551616".to_string()),
        1 => prop_oneof![Just("-1"), Just("+1"), Just("0x10"), Just("007"), Just(""), Just("1a")].prop_map(str::to_string),
    ]
}

fn separator() -> impl Strategy<Value = String> {
    prop_oneof![6 => Just(" ".to_string()), 1 => Just("\t".to_string()), 1 => Just("   ".to_string()), 1 => Just("".to_string()), 1 => Just(",".to_string())]
}

fn line_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (separator(), number_text(), separator(), number_text(), separator(), number_text(), prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\r"), 1 => Just(" x")])
            .prop_map(|(s0, a, s1, b, s2, c, tail)| format!("{s0}{a}{s1}{b}{s2}{c}{tail}")),
        1 => "[0-9 \t+x-]{0,12}",
    ]
}

/// Small plausible maps: a few lines of small ids, often overlapping.
fn small_map() -> impl Strategy<Value = String> {
    proptest::collection::vec((0u32..6, 0u32..6, 0u32..4), 1..4).prop_map(|v| v.iter().map(|(a, b, c)| format!("{a} {b} {c}\n")).collect())
}

/// Around the line limit: n disjoint one-id lines.
fn many_lines() -> impl Strategy<Value = String> {
    prop_oneof![Just(4usize), Just(5), Just(6), 338usize..343].prop_map(|n| (0..n).map(|i| format!("{i} {i} 1\n")).collect())
}

fn map_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(line_text(), 1..4).prop_map(|v| v.join("\n")),
        3 => small_map(),
        1 => many_lines(),
        1 => Just(String::new()),
        1 => (0usize..3).prop_map(|i| ["0 0 1\n\n", "\n0 0 1", "0 0 1\n1 1 1\n\n"][i].to_string()),
        1 => (4090usize..4100).prop_map(|n| format!("0 0 1{}", " ".repeat(n - 5))),
    ]
}

fn input() -> impl Strategy<Value = MapWrite> {
    (any::<bool>(), map_text(), proptest::option::weighted(0.3, map_text())).prop_map(|(gid, first, second)| MapWrite {
        gid,
        first,
        second,
    })
}

/// One write(2) of all of `text` to `proc`'s map
/// ([`harness::userns::write_map_once`]); the kernel's answer. Not opening
/// the map is broken, a short write a divergence.
fn write_once(proc: Proc, file: MapFile, text: &str) -> Result<Result<(), Errno>, Failure> {
    let written =
        write_map_once(proc, file, text).map_err(|e| Failure { broken: true, message: format!("opening {}: {e}", file.name()) })?;
    match written {
        Ok(n) if n == text.len() => Ok(Ok(())),
        Ok(n) => Err(Failure::diverged(format!("write of {} bytes to {} wrote {n}", text.len(), file.name()))),
        Err(e) => Ok(Err(e)),
    }
}

fn id_map_text() -> harness::CaseResult {
    let max = max_lines(harness::host::Host::running());
    let parents = (own_map(false), own_map(true));
    let p = Property { id: "fuzz.args.id_map_text", default_cases: CASES, persist: true, max_shrink_iters: 300 };
    let stats = run_property(&p, input(), |w| {
        let parent = if w.gid { &parents.1 } else { &parents.0 };
        let file = if w.gid { MapFile::Gid } else { MapFile::Uid };
        // clone(2) without map_root: the maps are what is written here.
        let mut peer = Spawn::clone(Kind::User)
            .spawn(|ch| {
                ch.ready()?;
                ch.wait()
            })
            .map_err(|e| Failure::from(CaseError::from(e)))?;
        peer.wait_ready()?;
        let proc = Proc::Pid(peer.pid().as_raw());
        let got = write_once(proc, file, &w.first)?;
        let expect = expected_first(&w.first, parent, max);
        let name = if w.gid { "gid_map" } else { "uid_map" };
        if !expect.admits(got) {
            return Err(Failure::diverged(format!("writing {:?} to {name}: rules say {expect:?}, kernel gave {got:?}", w.first)));
        }
        let mut steps = 1;
        if let Some(second) = &w.second {
            let got2 = write_once(proc, file, second)?;
            let expect2 = expected_second(second, got.is_ok(), parent, max);
            if !expect2.admits(got2) {
                return Err(Failure::diverged(format!(
                    "second write of {second:?} to {name} (first {:?}: {got:?}): rules say {expect2:?}, kernel gave {got2:?}",
                    w.first
                )));
            }
            steps += 1;
        }
        peer.go()?;
        peer.join()?;
        Ok(steps)
    });
    verdict(&p, &stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_on_known_texts() {
        let root = [(0u32, u32::MAX)];
        let ok = |t: &str| expected_first(t, &root, 340);
        assert_eq!(ok("0 0 1\n"), Expect::Ok);
        assert_eq!(ok("0 0 1"), Expect::Ok);
        assert_eq!(ok("\t0\t0\t1\r"), Expect::Ok);
        for bad in
            ["", "\n", "0 0 0", "0 0", "a b c", "-1 0 1", "0 0 1\n\n", "0 0 10\n5 100 1", "4294967295 0 1", "1 0 4294967295", "0 0 1 x"]
        {
            assert_eq!(ok(bad), Expect::Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(ok("4294967296 0 1"), Expect::Ok, "taken modulo 2^32");
        let past_u64 = if KernelVersion::running() >= KernelVersion::new(6, 19) { Expect::Err(Errno::EINVAL) } else { Expect::Ok };
        assert_eq!(ok("18446744073709551616 0 1"), past_u64, "wraps past 2^64 up to 6.18, refused later");
        let many: String = (0..341).map(|i| format!("{i} {i} 1\n")).collect();
        assert_eq!(ok(&many), Expect::Err(Errno::EINVAL));
        assert_eq!(expected_first("0 5 1", &[(0, 1)], 340), Expect::Err(Errno::EPERM));
        assert_eq!(expected_second("garbage", true, &root, 340), Expect::Err(Errno::EPERM));
    }
}
