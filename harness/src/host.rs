//! The running system's facts that cases, fuzz tables and reports decide
//! by: kernel release, privilege, and which namespace kinds are built in
//! (the one check of "is kind X compiled in").

use std::path::Path;

use crate::case::{Privilege, Requires};
use crate::flags::NsFlags;
use crate::kind::Kind;
use crate::known::CLONE3_NEWTIME_EINVAL;
use crate::probe::{self, KernelVersion};

/// Facts about the running system that requirements are checked against.
#[derive(Debug, Clone)]
pub struct Host {
    /// `uname -r`.
    pub release: String,
    /// Parsed release.
    pub kernel: KernelVersion,
    /// Effective uid 0 with CAP_SYS_ADMIN.
    pub privileged: bool,
    /// Reason the environment forbids unprivileged user namespaces, if any.
    pub userns_forbidden: Option<String>,
    /// Kinds built into the kernel, indexed by `Kind as usize`
    /// ([`kind_compiled_out`]: the kernel config where readable).
    pub kinds: [bool; 8],
    /// Whether clone3(2) takes CLONE_NEWTIME, as clone(2) documents: on
    /// every kernel but those where the known deviation
    /// [`CLONE3_NEWTIME_EINVAL`] applies (5.6 to 6.2 before the stable
    /// backports of a402f1e35313). A versioned expectation, decided by the
    /// release and never by calling clone3: a kernel inside that range that
    /// takes the flag, or one outside it that refuses it, fails.
    pub clone3_newtime: bool,
}

/// Why `kind` is not built into this kernel, or `None` when it is. The
/// kernel config decides ([`crate::kconfig`]): a configured kind runs its
/// cases even when its `/proc/self/ns` entry is missing, so that claim N1
/// fails there instead of every case skipping. Only without a readable
/// config does a missing entry mean "compiled out", and the reason says so.
pub fn kind_compiled_out(kind: Kind) -> Option<String> {
    let info = kind.info();
    match (crate::kconfig::KernelConfig::running(), info.config) {
        (_, None) => None,
        (Some(config), Some(option)) => (!config.built_in(option))
            .then(|| format!("{kind} namespaces are compiled out: {option} is not set in {}", config.source())),
        (None, Some(option)) => (!Path::new(&format!("/proc/self/ns/{}", info.proc_name)).exists()).then(|| {
            format!(
                "{kind} namespaces look compiled out: /proc/self/ns/{} is missing and no kernel config is readable to tell whether {option} is set (/proc/config.gz, /boot/config-<release>, ${})",
                info.proc_name,
                crate::kconfig::CONFIG_ENV
            )
        }),
    }
}

impl Host {
    /// Probes the running system.
    pub fn probe() -> Host {
        let mut kinds = [false; 8];
        for k in Kind::ALL {
            kinds[k as usize] = kind_compiled_out(k).is_none();
        }
        Host {
            kernel: KernelVersion::running(),
            release: probe::kernel_release(),
            privileged: probe::is_privileged(),
            userns_forbidden: probe::unprivileged_userns_forbidden(),
            kinds,
            clone3_newtime: !CLONE3_NEWTIME_EINVAL.applies.on(KernelVersion::running()),
        }
    }

    /// A host with the given kernel facts, for tables and their tests:
    /// `release` is the kernel's text, unprivileged, user namespaces allowed.
    pub fn with(kernel: KernelVersion, kinds: [bool; 8], clone3_newtime: bool) -> Host {
        Host { release: kernel.to_string(), kernel, privileged: false, userns_forbidden: None, kinds, clone3_newtime }
    }

    /// Whether the kernel is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.kernel >= KernelVersion::new(major, minor)
    }

    /// The `CLONE_NEW*` flags this kernel knows (the kind exists in this
    /// release); see [`Host::lacks_any`] for the compiled-in check.
    pub fn known_ns_flags(&self) -> NsFlags {
        Kind::ALL.into_iter().filter(|k| self.kernel >= k.info().since).collect()
    }

    /// Whether a kind in `flags` is compiled out of this kernel.
    pub fn lacks_any(&self, flags: NsFlags) -> bool {
        Kind::ALL.into_iter().any(|k| flags.contains(k.flag()) && !self.has(k))
    }

    /// The running system, probed once per process: the one home of the
    /// kernel facts that cases, fuzz tables and reports decide by.
    pub fn running() -> &'static Host {
        static HOST: std::sync::OnceLock<Host> = std::sync::OnceLock::new();
        HOST.get_or_init(Host::probe)
    }

    /// Whether `kind` is built into the kernel.
    pub fn has(&self, kind: Kind) -> bool {
        self.kinds[kind as usize]
    }

    /// Why `req` is unmet here, or `None` if the case can run.
    pub fn unmet(&self, req: &Requires) -> Option<String> {
        for kind in &req.kinds {
            let info = kind.info();
            if self.kernel < info.since {
                return Some(format!("{} namespaces need Linux {} ({}); this kernel is {}", kind, info.since, info.man_page, self.release));
            }
            if let Some(why) = kind_compiled_out(*kind) {
                return Some(why);
            }
        }
        if let Some(min) = req.kernel {
            if self.kernel < min {
                return Some(format!("needs Linux {min}; this kernel is {}", self.release));
            }
        }
        if req.privilege == Privilege::Root && !(self.privileged && probe::in_initial_user_ns()) {
            return Some("needs root (euid 0 with CAP_SYS_ADMIN in the initial user namespace)".into());
        }
        // A user namespace created by an unprivileged uid: the body's own
        // (user_namespaces) or the harness's, to give an unprivileged suite
        // CAP_SYS_ADMIN (Privilege::Admin).
        if req.user_namespaces || (req.privilege == Privilege::Admin && !self.privileged) {
            if let Some(why) = &self.userns_forbidden {
                return Some(why.clone());
            }
        }
        if req.kinds.contains(&Kind::User) && probe::sysctl_int("user/max_user_namespaces") == Some(0) {
            return Some("user.max_user_namespaces=0 forbids user namespaces".into());
        }
        for cap in &req.caps {
            if !probe::has_cap(*cap) {
                return Some(format!("needs {} in the suite's user namespace", cap.name()));
            }
        }
        req.probe.and_then(|p| p())
    }
}
