//! Facts about the kernel and machine that a report records.

use std::collections::BTreeMap;
use std::fs;

use crate::report::{Kernel, Machine};

/// The running kernel (uname(2)).
pub fn kernel() -> Kernel {
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref().map(|u| f(u).to_string_lossy().into_owned()).unwrap_or_else(|| "unknown".into())
    };
    Kernel { release: field(|u| u.release()), version: field(|u| u.version()) }
}

fn first_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The 1, 5 and 15 minute load averages of /proc/loadavg (zeros if unreadable).
pub fn load_average() -> [f64; 3] {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut v = text.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
    [v.next().unwrap_or(0.0), v.next().unwrap_or(0.0), v.next().unwrap_or(0.0)]
}

/// CPUs in the calling process's affinity mask.
pub fn cpus_allowed() -> Vec<usize> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect()
}

/// The machine facts of [`Machine`].
pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = first_field(&meminfo, "MemTotal").and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0);
    let vulnerabilities: BTreeMap<String, String> = fs::read_dir("/sys/devices/system/cpu/vulnerabilities")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), fs::read_to_string(e.path()).unwrap_or_default().trim().to_string()))
        .collect();
    Machine {
        cpu_model: first_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        cpus_online: std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        cpus_allowed: cpus_allowed(),
        memory_kib,
        clocksource: fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        vulnerabilities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        assert_eq!(first_field("a\t: 1\nmodel name\t: AMD EPYC\n", "model name").as_deref(), Some("AMD EPYC"));
        assert_eq!(first_field("x: 1", "y"), None);
        assert!(!kernel().release.is_empty());
    }
}
