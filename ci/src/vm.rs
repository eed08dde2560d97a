//! One VM: QEMU boots a kernel with the initramfs; the guest's `/init`
//! reports on the second serial port (QEMU's stdout here), which a reader
//! thread parses into events. The host follows the guest through explicit
//! phases and kills QEMU when a phase overstays its deadline.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;

/// How QEMU executes guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM when usable, TCG otherwise.
    Auto,
    /// Hardware virtualisation.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Auto => "auto",
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// Resolves `auto`: KVM only if /dev/kvm is writable and the CPU advertises
/// vmx or svm (a /dev/kvm from nested PVM runs only PVM-built guests and
/// stalls stock kernels). Returns the choice and why.
pub fn choose_accel(requested: Accel) -> (Accel, String) {
    if requested != Accel::Auto {
        return (requested, "forced by --accel".into());
    }
    let writable = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    let flags = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    match (writable, flags) {
        (true, true) => (Accel::Kvm, "/dev/kvm is writable and the CPU has vmx/svm".into()),
        (false, _) => (Accel::Tcg, "/dev/kvm is missing or not writable".into()),
        (true, false) => (Accel::Tcg, "/dev/kvm exists but /proc/cpuinfo has no vmx/svm flag (stock kernels stall)".into()),
    }
}

/// Phases of a VM, in order. A run that stops early names where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// QEMU is starting; the kernel is booting (nothing on the results channel yet).
    Booting,
    /// /init started.
    Init,
    /// A run (root, unprivileged, bench) is executing.
    Running(String),
    /// /init reported completion and is powering off.
    Done,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Booting => f.write_str("booting (kernel, before /init)"),
            Phase::Init => f.write_str("/init setup"),
            Phase::Running(r) => write!(f, "{r} run"),
            Phase::Done => f.write_str("done"),
        }
    }
}

/// Settings for one VM.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The guest's architecture (QEMU binary, machine, console, channel).
    pub arch: Arch,
    /// KVM or TCG (resolved, never Auto).
    pub accel: Accel,
    /// Guest RAM in MiB.
    pub memory_mb: u32,
    /// Guest CPUs.
    pub cpus: u32,
    /// Deadline for reaching /init.
    pub boot_timeout: Duration,
    /// Deadline for the whole VM.
    pub timeout: Duration,
    /// Extra kernel command line.
    pub append: String,
}

/// What the guest sent back for one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResult {
    /// Exit code of the command in the guest.
    pub exit: Option<i32>,
    /// Seconds from boot start until the run's exit code arrived.
    pub at_s: f64,
}

/// The end of one VM.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmOutcome {
    /// Last phase reached.
    pub phase: Phase,
    /// `uname -r` reported by /init.
    pub guest_release: Option<String>,
    /// Seconds from QEMU start to /init.
    pub boot_s: Option<f64>,
    /// Seconds from QEMU start to the end (results in hand, or failure).
    pub total_s: f64,
    /// Runs by name.
    pub runs: BTreeMap<String, RunResult>,
    /// Infrastructure failure: why the VM did not deliver every result.
    pub error: Option<String>,
    /// Last lines of the console, kept on failure.
    pub console_tail: Vec<String>,
    /// The guest sent `done` but did not power off (a kernel without ACPI
    /// halts); the driver ended QEMU after [`DONE_GRACE`].
    #[serde(default)]
    pub halted: bool,
}

/// How long QEMU may take to exit after the guest's `done`.
pub const DONE_GRACE: Duration = Duration::from_secs(3);

/// Events from the results channel.
enum Event {
    Phase(String, String),
    Exit(String, i32),
    File(String, Vec<u8>),
    Closed(Option<String>),
}

/// Copies bytes read to a transcript file.
struct Tee<R> {
    inner: R,
    log: std::fs::File,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.log.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Parses the results channel until EOF, sending events.
fn read_channel(input: impl Read, transcript: std::fs::File, tx: mpsc::Sender<Event>) {
    let mut r = BufReader::new(Tee { inner: input, log: transcript });
    let mut line = Vec::new();
    let closed = loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) => break None,
            Ok(_) => {}
            Err(e) => break Some(format!("reading the results channel: {e}")),
        }
        let text = String::from_utf8_lossy(&line);
        let Some(rest) = text.trim_end_matches(['\r', '\n']).split("@@NSVERIFY ").nth(1).map(str::to_string) else { continue };
        let mut words = rest.splitn(3, ' ');
        let (kind, a, b) = (words.next().unwrap_or(""), words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
        let event = match kind {
            "phase" => Event::Phase(a, b),
            "exit" => Event::Exit(a, b.trim().parse().unwrap_or(-1)),
            "file" => {
                let Ok(len) = b.trim().parse::<usize>() else { continue };
                let mut data = vec![0; len];
                if let Err(e) = r.read_exact(&mut data) {
                    break Some(format!("results channel ended inside {a} ({len} bytes): {e}"));
                }
                Event::File(a, data)
            }
            _ => continue,
        };
        if tx.send(event).is_err() {
            return;
        }
    };
    let _ = tx.send(Event::Closed(closed));
}

/// Lines of a console log that report kernel trouble (claim K1), by the
/// marks the harness's kernel-log scan uses (harness::health).
pub fn health_reports(console: &str) -> Vec<String> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| harness::health::is_report(l))
        .map(|l| l.chars().filter(|c| !c.is_control()).collect::<String>())
        .collect()
}

/// The last `n` readable lines of the console log, without escape sequences.
pub fn console_tail(path: &Path, n: usize) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let clean: Vec<String> = text
        .split(['\n', '\r'])
        .map(|l| l.chars().filter(|c| !c.is_control() || *c == '\t').collect::<String>())
        .map(|l| l.replace("[0m", "").replace("[31m", "").replace("[32m", "").replace("[33m", ""))
        .filter(|l| !l.trim().is_empty())
        .collect();
    clean[clean.len().saturating_sub(n)..].to_vec()
}

/// The QEMU command line, under coreutils `timeout` in its own process
/// group: should the driver itself be killed, QEMU still ends shortly after
/// the VM's deadline instead of lingering.
fn qemu_command(cfg: &VmConfig, kernel: &Path, initramfs: &Path, console: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.args(["--kill-after=5", &format!("{}", cfg.timeout.as_secs() + 30), cfg.arch.qemu().0]);
    c.args(cfg.arch.machine_args(cfg.accel == Accel::Kvm));
    // qboot starts faster than SeaBIOS and is all a direct kernel boot needs
    // (x86 only: the arm64 virt board loads the Image without firmware).
    let qboot = Path::new("/usr/share/qemu/qboot.rom");
    if cfg.arch == Arch::Amd64 && qboot.exists() {
        c.arg("-bios").arg(qboot);
    }
    c.args(["-m", &cfg.memory_mb.to_string(), "-smp", &cfg.cpus.to_string()])
        .args(["-display", "none", "-no-reboot", "-nodefaults", "-no-user-config", "-net", "none"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .args(["-chardev", "stdio,id=results,signal=off"])
        .args(cfg.arch.channel_args())
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        // panic=-1 with -no-reboot: a guest panic ends QEMU at once. A verbose
        // console costs nothing measurable and makes a stalled boot diagnosable.
        .arg("-append")
        .arg(format!("console={} panic=-1 loglevel=7 {}", cfg.arch.console(), cfg.append).trim_end())
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    c
}

/// Kills `timeout` and QEMU: the process group `timeout` leads.
fn kill_group(leader: u32) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{leader}")]).status();
}

/// Boots `kernel` with `initramfs`; results files land in `out`
/// (`<run>.jsonl`, `<run>.out`, ...), with `console.log`, `serial1.log`
/// (raw results channel) and `qemu.log`. `progress` is told each phase.
pub fn run_vm(cfg: &VmConfig, kernel: &Path, initramfs: &Path, out: &Path, progress: &dyn Fn(&str)) -> Result<VmOutcome> {
    let console = out.join("console.log");
    let qemu_log = out.join("qemu.log");
    let mut cmd = qemu_command(cfg, kernel, initramfs, &console);
    cmd.stderr(std::fs::File::create(&qemu_log)?);
    std::fs::write(out.join("qemu.cmdline"), format!("{cmd:?}\n"))?;
    let started = Instant::now();
    let (qemu, package) = cfg.arch.qemu();
    let mut child = cmd.spawn().with_context(|| format!("starting {qemu} (install {package})"))?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    let transcript = std::fs::File::create(out.join("serial1.log"))?;
    let reader = std::thread::spawn(move || read_channel(stdout, transcript, tx));

    let mut o = VmOutcome {
        phase: Phase::Booting,
        guest_release: None,
        boot_s: None,
        total_s: 0.0,
        runs: BTreeMap::new(),
        error: None,
        console_tail: vec![],
        halted: false,
    };
    // Once `done` is in, every result has arrived: a kernel without ACPI
    // halts instead of powering off, so QEMU gets a short grace period to
    // exit by itself and is then ended by the driver (not a failure).
    let mut done_at: Option<Duration> = None;
    let closed = loop {
        let deadline = match (o.phase == Phase::Booting, done_at) {
            (_, Some(at)) => (at + DONE_GRACE).min(cfg.timeout),
            (true, None) => cfg.boot_timeout,
            (false, None) => cfg.timeout,
        };
        let left = deadline.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(Event::Phase(name, detail)) => {
                let at = started.elapsed().as_secs_f64();
                o.phase = match name.as_str() {
                    "init" => {
                        o.boot_s = Some(at);
                        o.guest_release = Some(detail.trim().to_string());
                        Phase::Init
                    }
                    "done" => {
                        done_at = Some(started.elapsed());
                        Phase::Done
                    }
                    run => Phase::Running(run.to_string()),
                };
                progress(&format!("{} at {at:.1}s", o.phase));
            }
            Ok(Event::Exit(run, code)) => {
                o.runs.insert(run, RunResult { exit: Some(code), at_s: started.elapsed().as_secs_f64() });
            }
            Ok(Event::File(name, data)) => {
                if name.contains('/') || name.starts_with('.') {
                    continue;
                }
                std::fs::write(out.join(&name), data)?;
            }
            Ok(Event::Closed(err)) => break err,
            Err(mpsc::RecvTimeoutError::Timeout) if o.phase == Phase::Done => {
                kill_group(child.id());
                o.halted = true;
                break None;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kill_group(child.id());
                o.error = Some(format!(
                    "timed out after {:.0}s in phase: {} (limit {}s {})",
                    started.elapsed().as_secs_f64(),
                    o.phase,
                    deadline.as_secs(),
                    if o.phase == Phase::Booting { "to reach /init; --boot-timeout" } else { "for the whole VM; --timeout" }
                ));
                break None;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
        }
    };
    // QEMU closes the channel when it exits; reap it (it was killed on timeout).
    let status = child.wait()?;
    let _ = reader.join();
    o.total_s = started.elapsed().as_secs_f64();
    if o.error.is_none() && o.phase != Phase::Done {
        let qemu_err = std::fs::read_to_string(&qemu_log).unwrap_or_default();
        let why = if o.phase == Phase::Booting {
            "the kernel never reached /init (panic, stall or unbootable image)".to_string()
        } else {
            format!("the guest stopped during the {} without finishing", o.phase)
        };
        let mut msg = format!("{why}; qemu exited with {status}");
        if let Some(e) = closed {
            msg += &format!("; {e}");
        }
        if !qemu_err.trim().is_empty() {
            msg += &format!("; qemu says: {}", qemu_err.trim().lines().last().unwrap_or(""));
        }
        o.error = Some(msg);
    }
    if o.error.is_some() {
        o.console_tail = console_tail(&console, 15);
    }
    Ok(o)
}

/// The kernel image to boot: the uncompressed vmlinux through PVH under TCG
/// when available (saves the guest's decompression), else the bzImage.
pub fn boot_image(accel: Accel, bzimage: PathBuf, vmlinux: Option<PathBuf>, pvh: bool) -> (PathBuf, &'static str) {
    match vmlinux {
        Some(v) if accel == Accel::Tcg && pvh => (v, "vmlinux (PVH)"),
        _ => (bzimage, "bzImage"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_parses_phases_exits_and_length_framed_files() {
        let stream: &[u8] = b"noise\r\n@@NSVERIFY phase init 6.1.0-56-amd64\n@@NSVERIFY phase root\n\
            @@NSVERIFY exit root 101\n@@NSVERIFY file root.jsonl 9\n{\"a\":1}\n\n@@NSVERIFY phase done\n";
        let (tx, rx) = mpsc::channel();
        let log = std::fs::File::create("/dev/null").unwrap();
        read_channel(stream, log, tx);
        let events: Vec<Event> = rx.into_iter().collect();
        assert!(matches!(&events[0], Event::Phase(p, d) if p == "init" && d == "6.1.0-56-amd64"));
        assert!(matches!(&events[2], Event::Exit(r, 101) if r == "root"));
        assert!(matches!(&events[3], Event::File(n, d) if n == "root.jsonl" && d == b"{\"a\":1}\n\n"));
        assert!(matches!(&events[4], Event::Phase(p, _) if p == "done"));
        assert!(matches!(&events[5], Event::Closed(None)));
    }

    #[test]
    fn truncated_file_is_reported() {
        let (tx, rx) = mpsc::channel();
        read_channel(&b"@@NSVERIFY file x 100\nshort"[..], std::fs::File::create("/dev/null").unwrap(), tx);
        let events: Vec<Event> = rx.into_iter().collect();
        assert!(matches!(&events[0], Event::Closed(Some(e)) if e.contains("inside x")));
    }

    #[test]
    fn qemu_command_line_per_arch() {
        let mut cfg = VmConfig {
            arch: Arch::Arm64,
            accel: Accel::Tcg,
            memory_mb: 1024,
            cpus: 2,
            boot_timeout: Duration::from_secs(60),
            timeout: Duration::from_secs(450),
            append: String::new(),
        };
        let line = |cfg: &VmConfig| {
            let c = qemu_command(cfg, Path::new("K"), Path::new("I"), Path::new("C"));
            c.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
        };
        let arm = line(&cfg);
        assert!(arm.starts_with("--kill-after=5 480 qemu-system-aarch64 -machine virt -accel tcg -cpu max,pauth-impdef=on "), "{arm}");
        assert!(arm.contains("-device pci-serial,chardev=results") && !arm.contains("-bios"), "{arm}");
        assert!(arm.ends_with("-append console=ttyAMA0 panic=-1 loglevel=7"), "{arm}");
        cfg.arch = Arch::Amd64;
        let x86 = line(&cfg);
        assert!(x86.contains("qemu-system-x86_64 -accel tcg -cpu max "), "{x86}");
        assert!(x86.contains("-chardev stdio,id=results,signal=off -serial chardev:results -kernel K"), "{x86}");
        assert!(x86.ends_with("console=ttyS0 panic=-1 loglevel=7"), "{x86}");
    }

    #[test]
    fn phases_are_ordered() {
        assert!(Phase::Booting < Phase::Init && Phase::Init < Phase::Running("root".into()));
        assert_eq!(boot_image(Accel::Kvm, "bz".into(), Some("vm".into()), true).1, "bzImage");
        assert_eq!(boot_image(Accel::Tcg, "bz".into(), Some("vm".into()), true).1, "vmlinux (PVH)");
    }
}
