//! M2: writing `/proc/[pid]/timens_offsets`. Writes succeed before any
//! process entered the namespace and read back; after a child or a
//! setns(2) joiner, EACCES; malformed records and unknown clocks EINVAL,
//! out-of-range offsets ERANGE, a writer without CAP_SYS_TIME EPERM, each
//! changing nothing; a namespace unshared inside another starts with its
//! offsets, relative to the initial namespace.

use harness::clock::{self, gettime_syscall, Clock, Offset, OffsetClock, Offsets, OffsetsFile, KTIME_SEC_MAX, NANOS_PER_SEC};
use harness::peer::{call, Spawn};
use harness::{check, check_eq, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Proc, Requires, Setup};

use super::{bracketed, requires, secs, DAY, OFFSETS, TIME_FOR_CHILDREN};
use crate::common::must_fail_with;

/// Reading or writing timens_offsets with symbolic clock names: 5.7
/// (94d440d61846, "Show clock symbolic names"); 5.6 showed numbers.
fn requires_names() -> Requires {
    requires().kernel(5, 7)
}

/// A state written first, so that a failed write that reset the offsets
/// (or applied part of a record set) is seen.
const KNOWN: Offsets = Offsets { monotonic: Offset { secs: 5 * DAY, nanos: 1 }, boottime: Offset { secs: 7 * DAY, nanos: 999_999_999 } };

/// Records that time_namespaces(7) makes EINVAL: not `<clock-id>
/// <offset-secs> <offset-nanosecs>`, nanoseconds beyond 999,999,999
/// (offset-nanosecs is unsigned), or a bad second line, which must keep the
/// good first line from applying too.
const MALFORMED: &[&str] = &[
    "not an offset\n",
    "monotonic 10\n",
    "monotonic ten 0\n",
    "monotonic 10 1000000000\n",
    "boottime 10 -1\n",
    "monotonic 10 0\nboottime 10\n",
    "monotonic 10 0\nboottime x 0\n",
];

/// Clock ids time_namespaces(7) does not accept (only monotonic/1 and
/// boottime/7): CLOCK_REALTIME by name and number, and the clocks that
/// follow an offset but have none of their own.
const UNKNOWN_CLOCKS: &[&str] = &[
    "realtime 10 0\n",
    "0 10 0\n",
    "monotonic_raw 10 0\n",
    "4 10 0\n",
    "boottime_alarm 10 0\n",
    "9 10 0\n",
    "tai 10 0\n",
    "11 10 0\n",
    "2 10 0\n",
];

/// The M2 cases, in the topic's order.
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "timens.offsets.write_before_entry",
            &["M2"],
            "after unshare(CLONE_NEWTIME) the new namespace's offsets read as the creator's (zero), may be written several times \
             by name or clock id before any process enters, each record replacing only its clock, and read back exactly",
            || write_before_entry(false),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.eacces_after_child",
            &["M2"],
            "once a child has been created in the namespace (even after it exited), writing timens_offsets is EACCES and the offsets stay",
            || eacces_after(Entry::Child),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.eacces_after_setns",
            &["M2"],
            "once another process has joined the namespace with setns(2), writing timens_offsets is EACCES and the offsets stay",
            || eacces_after(Entry::Setns),
        )
        // setns(2) into a time namespace: 5.8 (as the setns cases).
        .requires(requires_names().kernel(5, 8)),
        Case::new(
            "timens.offsets.malformed_einval",
            &["M2"],
            "a record that is not `<clock-id> <secs> <nanosecs>`, nanoseconds above 999,999,999 or a bad second line is EINVAL, \
             changes nothing (not even the good first line) and does not freeze the offsets",
            || rejected(MALFORMED, Errno::EINVAL, None),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.unknown_clock_einval",
            &["M2"],
            "a clock other than monotonic (1) or boottime (7), CLOCK_REALTIME included, is EINVAL and changes nothing",
            || rejected(UNKNOWN_CLOCKS, Errno::EINVAL, None),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.out_of_range_erange",
            &["M2"],
            "offset-secs beyond KTIME_SEC_MAX, or making the clock negative or beyond KTIME_SEC_MAX/2, is ERANGE and changes nothing; \
             offsets just inside those bounds are accepted",
            || out_of_range(false),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.eperm_without_cap_sys_time",
            &["M2"],
            "a writer that opened timens_offsets without CAP_SYS_TIME is EPERM and changes nothing",
            || eperm_without_cap(true),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.inherited_not_stacked",
            &["M2"],
            "a time namespace unshared inside another starts with that one's offsets; its own offsets are relative to the initial \
             time namespace, not added to the outer ones",
            || inherited_not_stacked(false),
        )
        .requires(requires_names()),
    ]
}

/// The M2 cases run sabotaged: each must then fail at its check.
pub(super) fn sabotaged() -> Vec<Case> {
    vec![
        Case::new("sabotage.timens.offsets.write_before_entry", &["M2"], "a child enters the namespace before the writes", || {
            must_fail_with(write_before_entry(true), "writing timens_offsets before any process entered")
        })
        .requires(requires_names()),
        Case::new("sabotage.timens.offsets.eacces_after_child", &["M2"], "no process enters the namespace", || {
            must_fail_with(eacces_after(Entry::Nobody), "writing timens_offsets after")
        })
        .requires(requires_names()),
        Case::new("sabotage.timens.offsets.malformed_einval", &["M2"], "a well-formed record is listed as malformed", || {
            must_fail_with(rejected(MALFORMED, Errno::EINVAL, Some("boottime 10 0\n")), "writing \"boottime 10 0\\n\"")
        })
        .requires(requires_names()),
        Case::new("sabotage.timens.offsets.unknown_clock_einval", &["M2"], "clock id 7 (boottime) is listed as unknown", || {
            must_fail_with(rejected(UNKNOWN_CLOCKS, Errno::EINVAL, Some("7 10 0\n")), "writing \"7 10 0\\n\"")
        })
        .requires(requires_names()),
        Case::new(
            "sabotage.timens.offsets.out_of_range_erange",
            &["M2"],
            "an offset just inside the bounds is expected to be ERANGE",
            || must_fail_with(out_of_range(true), "writing the in-range"),
        )
        .requires(requires_names()),
        Case::new("sabotage.timens.offsets.eperm_without_cap_sys_time", &["M2"], "CAP_SYS_TIME is kept", || {
            must_fail_with(eperm_without_cap(false), "writing timens_offsets without CAP_SYS_TIME")
        })
        .requires(requires_names()),
        Case::new(
            "sabotage.timens.offsets.inherited_not_stacked",
            &["M2"],
            "the inner offsets are expected stacked on the outer ones",
            || must_fail_with(inherited_not_stacked(true), "CLOCK_MONOTONIC of a child of the inner namespace"),
        )
        .requires(requires_names()),
    ]
}

/// Reads the caller's offsets (those of its time_for_children namespace).
fn own_offsets() -> Result<Offsets, CaseError> {
    clock::read_offsets(Proc::Myself)
}

/// M2: writes before entry succeed and read back; `child_first` is the
/// sabotage (a child enters first).
fn write_before_entry(child_first: bool) -> CaseResult {
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        check_eq!(own_offsets()?, Offsets::ZERO, "timens_offsets of a new time namespace unshared from the initial one");
        if child_first {
            call(&Spawn::fork(), || Ok(()))?;
        }
        let mut file = OffsetsFile::open(Proc::Myself)?;
        let first = Offsets { monotonic: Offset { secs: 2 * DAY, nanos: 123 }, boottime: Offset { secs: 4 * DAY, nanos: 456 } };
        for (text, expected) in [
            (first.to_text(), first),
            // One record replaces only its clock.
            ("boottime 86400 999999999\n".to_string(), Offsets { boottime: Offset { secs: DAY, nanos: 999_999_999 }, ..first }),
            // The numeric ids of the first implementation (NOTES).
            (
                "1 -1 0\n7 100 5\n".to_string(),
                Offsets { monotonic: Offset { secs: -1, nanos: 0 }, boottime: Offset { secs: 100, nanos: 5 } },
            ),
        ] {
            match file.write(&text) {
                Ok(n) => check_eq!(n, text.len(), "bytes written of {text:?}"),
                Err(e) => {
                    return Err(CaseError::fail(format!(
                        "writing timens_offsets before any process entered the namespace: {text:?} gave {e:?} ({})",
                        e.desc()
                    )))
                }
            }
            check_eq!(own_offsets()?, expected, "timens_offsets after writing {text:?}");
        }
        // The child that enters sees the same namespace's offsets.
        let seen = call(&Spawn::fork(), own_offsets)?;
        check_eq!(seen, own_offsets()?, "timens_offsets read by a child in the namespace");
        Ok(())
    })
}

/// How a process comes into the namespace before the forbidden write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The creator forks a child (which exits before the write).
    Child,
    /// Another process joins with setns(2) on the creator's
    /// time_for_children and stays.
    Setns,
    /// The sabotage: nobody enters.
    Nobody,
}

/// M2: after the first process entered, a write is EACCES and the offsets
/// are unchanged; the entered process sees the original offsets.
fn eacces_after(entry: Entry) -> CaseResult {
    let mut creator = Spawn::unshare(Kind::Time.flag()).spawn(|ch| {
        OffsetsFile::open(Proc::Myself)?.write_all(&KNOWN.to_text()).setup("write the first offsets")?;
        let new = NsId::of_entry(Proc::Myself, TIME_FOR_CHILDREN).setup("stat time_for_children")?;
        if entry == Entry::Child {
            let inside = call(&Spawn::fork(), || Ok(NsId::current(Kind::Time)?))?;
            check_eq!(inside, new, "time namespace of the creator's child");
        }
        ch.send(&new)?;
        // The joiner (if any) has entered when the parent says go.
        ch.wait()?;
        let when = match entry {
            Entry::Child => "after a child was created in the namespace",
            Entry::Setns | Entry::Nobody => "after another process joined the namespace with setns",
        };
        let changed = Offsets { monotonic: Offset { secs: 1, nanos: 0 }, ..KNOWN };
        expect_errno!(OffsetsFile::open(Proc::Myself)?.write(&changed.to_text()), Errno::EACCES, "writing timens_offsets {when}");
        check_eq!(own_offsets()?, KNOWN, "timens_offsets after the refused write");
        Ok(())
    })?;
    let new: NsId = creator.recv()?;
    let mut joiner = None;
    if entry == Entry::Setns {
        let pid = creator.pid().as_raw();
        let mut peer = Spawn::fork().spawn(move |ch| {
            let fd = NsFd::open_entry(Proc::Pid(pid), TIME_FOR_CHILDREN)?;
            fd.setns(Kind::Time.flag())?;
            ch.send(&NsId::current(Kind::Time)?)?;
            ch.wait()
        })?;
        let joined: NsId = peer.recv()?;
        check_eq!(joined, new, "time namespace of the process that joined the creator's time_for_children");
        joiner = Some(peer);
    }
    creator.go()?;
    creator.join()?;
    if let Some(mut peer) = joiner {
        peer.go()?;
        peer.join()?;
    }
    Ok(())
}

/// M2: each of `records` is refused with `errno` in a namespace no process
/// has entered, and the offsets stay [`KNOWN`]; a valid write still works
/// afterwards (a failure does not freeze them). `sabotage` adds a valid
/// record to the list.
fn rejected(records: &'static [&'static str], errno: Errno, sabotage: Option<&'static str>) -> CaseResult {
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        let mut file = OffsetsFile::open(Proc::Myself)?;
        file.write_all(&KNOWN.to_text()).setup("write the first offsets")?;
        for text in records.iter().copied().chain(sabotage) {
            expect_errno!(file.write(text), errno, "writing {text:?} to timens_offsets");
            check_eq!(own_offsets()?, KNOWN, "timens_offsets after the refused write of {text:?}");
        }
        file.write_all(&Offsets::ZERO.to_text())?;
        check_eq!(own_offsets()?, Offsets::ZERO, "timens_offsets written after the refused writes");
        Ok(())
    })
}

/// M2: ERANGE at the bounds the kernel documents (time_namespaces(7),
/// kernel/time/namespace.c proc_timens_set_offset()), each changing
/// nothing; offsets ten seconds inside them are accepted. `sabotage`
/// expects ERANGE for an accepted one.
fn out_of_range(sabotage: bool) -> CaseResult {
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        let mut file = OffsetsFile::open(Proc::Myself)?;
        file.write_all(&KNOWN.to_text()).setup("write the first offsets")?;
        let mono = gettime_syscall(Clock::Monotonic)?.div_euclid(NANOS_PER_SEC);
        let boot = gettime_syscall(Clock::Boottime)?.div_euclid(NANOS_PER_SEC);
        let half = KTIME_SEC_MAX / 2;
        let refused = [
            format!("monotonic {} 0\n", KTIME_SEC_MAX + 1),
            format!("boottime {} 0\n", -(KTIME_SEC_MAX + 1)),
            // The clock would exceed KTIME_SEC_MAX/2 ...
            format!("monotonic {} 0\n", half - mono + 10),
            format!("boottime {} 0\n", half - boot + 10),
            // ... or be negative.
            format!("monotonic {} 0\n", -(mono + 10)),
            format!("boottime {} 0\n", -(boot + 10)),
        ];
        for text in &refused {
            expect_errno!(file.write(text), Errno::ERANGE, "writing the out-of-range {text:?} to timens_offsets");
            check_eq!(own_offsets()?, KNOWN, "timens_offsets after the refused write of {text:?}");
        }
        let accepted = [
            (OffsetClock::Monotonic, Offset { secs: half - mono - 10, nanos: 0 }),
            (OffsetClock::Boottime, Offset { secs: half - boot - 10, nanos: 0 }),
            (OffsetClock::Monotonic, Offset { secs: -(mono - 10).max(0), nanos: 0 }),
        ];
        for (clock, offset) in accepted {
            let text = format!("{} {} {}\n", clock.name(), offset.secs, offset.nanos);
            if sabotage {
                expect_errno!(file.write(&text), Errno::ERANGE, "writing the in-range {text:?} to timens_offsets");
            }
            match file.write(&text) {
                Ok(n) => check_eq!(n, text.len(), "bytes written of {text:?}"),
                Err(e) => {
                    return Err(CaseError::fail(format!("writing the in-range {text:?} to timens_offsets gave {e:?} ({})", e.desc())))
                }
            }
            check_eq!(own_offsets()?.of(clock), offset, "the {} offset after writing {text:?}", clock.name());
            file.write_all(&KNOWN.to_text())?;
        }
        Ok(())
    })
}

/// M2: a writer without CAP_SYS_TIME (dropped before opening: the kernel
/// checks the opener's credentials) gets EPERM and changes nothing.
/// `drop_cap` false is the sabotage.
fn eperm_without_cap(drop_cap: bool) -> CaseResult {
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        OffsetsFile::open(Proc::Myself)?.write_all(&KNOWN.to_text()).setup("write the first offsets")?;
        if drop_cap {
            harness::caps::drop_capability(harness::probe::Cap::SYS_TIME).setup("drop CAP_SYS_TIME")?;
        }
        let mut file = OffsetsFile::open(Proc::Myself)?;
        expect_errno!(file.write(&Offsets::ZERO.to_text()), Errno::EPERM, "writing timens_offsets without CAP_SYS_TIME");
        check_eq!(own_offsets()?, KNOWN, "timens_offsets after the refused write");
        Ok(())
    })
}

/// M2 (and M1): a namespace unshared by a member of another starts with
/// its offsets; the offsets written to it are relative to the initial
/// namespace, so a child of it shows the outside's clock plus the inner
/// offset only. `stacked` is the sabotage (expects outer plus inner).
fn inherited_not_stacked(stacked: bool) -> CaseResult {
    let inner = Offsets { monotonic: Offset { secs: 20 * DAY, nanos: 250_000_000 }, boottime: Offset { secs: 30 * DAY, nanos: 0 } };
    let (before, (inherited, inside), after) = bracketed(
        OFFSETS,
        || Ok(gettime_syscall(Clock::Monotonic)?),
        move || {
            // In the outer namespace: unshare again.
            call(&Spawn::unshare(Kind::Time.flag()), move || {
                let inherited = own_offsets()?;
                OffsetsFile::open(Proc::Myself)?.write_all(&inner.to_text()).setup("write the inner offsets")?;
                let inside = call(&Spawn::fork(), || Ok(gettime_syscall(Clock::Monotonic)?))?;
                Ok((inherited, inside))
            })
        },
    )?;
    check_eq!(inherited, OFFSETS, "timens_offsets of a time namespace unshared inside one with offsets");
    let shift = if stacked { OFFSETS.monotonic.as_nanos() + inner.monotonic.as_nanos() } else { inner.monotonic.as_nanos() };
    check!(
        (before + shift..=after + shift).contains(&inside),
        "CLOCK_MONOTONIC of a child of the inner namespace reads {} s: expected the initial namespace's plus the inner offset {} s, \
         between {} and {}",
        secs(inside),
        secs(shift),
        secs(before + shift),
        secs(after + shift)
    );
    Ok(())
}
