//! Per-architecture facts of the VM matrix: which Debian architecture a
//! kernel entry names, how its guest binaries are built, how QEMU boots it
//! and where its results channel appears in the guest. Pure data, so the
//! other modules ask here instead of testing the architecture themselves.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The architecture of a kernel entry, by its Debian name (`arch = "..."`
/// in ci/kernels.toml; `amd64` when absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// x86_64: qemu-system-x86_64, bzImage (or its vmlinux through PVH).
    #[default]
    Amd64,
    /// aarch64: qemu-system-aarch64 `-machine virt`, the uncompressed Image.
    Arm64,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.debian())
    }
}

impl Arch {
    /// Every architecture, in the order runs take them.
    pub const ALL: [Arch; 2] = [Arch::Amd64, Arch::Arm64];

    /// The Debian architecture name (APT::Architecture, package suffixes).
    pub fn debian(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The architecture the driver itself runs on.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::Amd64
        }
    }

    /// Whether this is the host's architecture (KVM is possible only then).
    pub fn is_host(self) -> bool {
        self == Arch::host()
    }

    /// The Debian kernel meta package an entry without `package` means.
    pub fn default_kernel_package(self) -> String {
        format!("linux-image-{}", self.debian())
    }

    /// The private apt's directory under the cache: `apt` for amd64 (as
    /// before arm64 existed), `apt-<arch>` for the others. One architecture
    /// per apt keeps `apt-cache show pkg/suite` unambiguous.
    pub fn apt_dir(self) -> String {
        match self {
            Arch::Amd64 => "apt".into(),
            other => format!("apt-{}", other.debian()),
        }
    }

    /// The Rust target the guest's case, fuzz and setpriv executables are
    /// built for: static musl on every architecture, so the guest needs no
    /// shared libraries and both architectures run the same libc.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    /// cargo options for the guest build: the toolchain's own lld links the
    /// static musl executable, so no C toolchain for the target is needed.
    pub fn cargo_args(self) -> Vec<String> {
        let t = self.rust_target();
        vec!["--config".into(), format!("target.{t}.linker=\"rust-lld\""), "--target".into(), t.into()]
    }

    /// cargo options for the guest's bench executable, `None` where it
    /// cannot be built. The bench stays on glibc, as on the host, but
    /// linked static (`crt-static`, which makes its floor static too,
    /// benches/build.rs): criterion's build compiles C, which the host's
    /// compiler does for the host's own target, and glibc's allocator and
    /// fork path are the ones host reports measured. Naming `--target`
    /// keeps the flag off build scripts and proc macros.
    pub fn bench_cargo_args(self) -> Option<Vec<String>> {
        match self {
            Arch::Amd64 if self.is_host() => {
                let t = "x86_64-unknown-linux-gnu";
                Some(vec![
                    "--config".into(),
                    format!("target.{t}.rustflags=[\"-C\", \"target-feature=+crt-static\"]"),
                    "--target".into(),
                    t.into(),
                ])
            }
            _ => None,
        }
    }

    /// Where a built kernel tree keeps the image the matrix boots.
    pub fn tree_image(self) -> &'static str {
        match self {
            Arch::Amd64 => "arch/x86/boot/bzImage",
            Arch::Arm64 => "arch/arm64/boot/Image",
        }
    }

    /// The config fragment merged after ci/kernel.config for a tree of
    /// this architecture (the board's console, PCI and serial drivers).
    pub fn kernel_fragment(self) -> Option<&'static str> {
        match self {
            Arch::Amd64 => None,
            Arch::Arm64 => Some("ci/kernel.arm64.config"),
        }
    }

    /// The architecture of a kernel image the matrix can boot, from its
    /// header: an x86 bzImage (`HdrS` at 0x202) or an arm64 `Image`
    /// (`ARM\x64` at 0x38, Documentation/arch/arm64/booting.rst).
    pub fn of_image(image: &[u8]) -> Option<Arch> {
        if image.get(0x202..0x206) == Some(b"HdrS") {
            Some(Arch::Amd64)
        } else if image.get(0x38..0x3c) == Some(b"ARM\x64") {
            Some(Arch::Arm64)
        } else {
            None
        }
    }

    /// The architecture an ELF executable is built for (its `e_machine`:
    /// EM_X86_64 62, EM_AARCH64 183), `None` for anything else.
    pub fn of_elf(elf: &[u8]) -> Option<Arch> {
        if elf.get(..4) != Some(b"\x7fELF") || elf.get(5) != Some(&1) {
            return None;
        }
        match u16::from_le_bytes([*elf.get(0x12)?, *elf.get(0x13)?]) {
            62 => Some(Arch::Amd64),
            183 => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// The name of the kernel image file in the kernel cache.
    pub fn image_file(self) -> &'static str {
        match self {
            Arch::Amd64 => "bzImage",
            Arch::Arm64 => "Image",
        }
    }

    /// The QEMU system emulator and the Debian package that provides it.
    pub fn qemu(self) -> (&'static str, &'static str) {
        match self {
            Arch::Amd64 => ("qemu-system-x86_64", "qemu-system-x86"),
            Arch::Arm64 => ("qemu-system-aarch64", "qemu-system-arm"),
        }
    }

    /// The guest's console device, for `console=`.
    pub fn console(self) -> &'static str {
        match self {
            Arch::Amd64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }

    /// The guest device of the results channel (NSVERIFY_CHANNEL for
    /// /init): x86_64's second 16550; on arm64 the virt board has one UART
    /// (the console), so the channel is a PCI 16550, the guest's first ttyS.
    pub fn results_channel(self) -> &'static str {
        match self {
            Arch::Amd64 => "/dev/ttyS1",
            Arch::Arm64 => "/dev/ttyS0",
        }
    }

    /// QEMU arguments for the machine and CPU under `kvm` or TCG.
    /// `pauth-impdef=on`: QEMU's default pointer authentication (QARMA5)
    /// in software more than doubles boot time under TCG.
    pub fn machine_args(self, kvm: bool) -> Vec<&'static str> {
        match (self, kvm) {
            (Arch::Amd64, true) => vec!["-accel", "kvm", "-cpu", "host"],
            (Arch::Amd64, false) => vec!["-accel", "tcg", "-cpu", "max"],
            (Arch::Arm64, true) => vec!["-machine", "virt", "-accel", "kvm", "-cpu", "host"],
            (Arch::Arm64, false) => vec!["-machine", "virt", "-accel", "tcg", "-cpu", "max,pauth-impdef=on"],
        }
    }

    /// QEMU arguments that attach the chardev `results` as the results channel.
    pub fn channel_args(self) -> [&'static str; 2] {
        match self {
            Arch::Amd64 => ["-serial", "chardev:results"],
            Arch::Arm64 => ["-device", "pci-serial,chardev=results"],
        }
    }

    /// How much longer a kernel of this architecture takes than x86_64
    /// under TCG (measured: 6.12 took 169 s on amd64, 215 s on arm64), a
    /// factor on the per-kernel `--timeout`.
    pub fn timeout_factor(self) -> f64 {
        match self {
            Arch::Amd64 => 1.0,
            Arch::Arm64 => 1.5,
        }
    }
}

/// The release (`uname -r`) in a kernel image that carries the banner
/// `Linux version <release> ...` uncompressed (the arm64 Image does; an x86
/// bzImage names it in its header instead, crate::bzimage).
pub fn banner_release(image: &[u8]) -> Option<String> {
    let mark = b"Linux version ";
    let at = image.windows(mark.len()).position(|w| w == mark)? + mark.len();
    let rest = &image[at..image.len().min(at + 200)];
    let end = rest.iter().position(|b| *b == b' ' || *b == 0)?;
    let release = std::str::from_utf8(&rest[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_default_to_amd64() {
        for a in Arch::ALL {
            assert_eq!(serde_json::from_value::<Arch>(serde_json::json!(a.debian())).unwrap(), a);
            assert_eq!(a.to_string(), a.debian());
        }
        assert!(serde_json::from_value::<Arch>(serde_json::json!("x86_64")).is_err());
        assert_eq!(Arch::default(), Arch::Amd64);
        assert_eq!(Arch::Arm64.default_kernel_package(), "linux-image-arm64");
        assert_eq!((Arch::Amd64.apt_dir(), Arch::Arm64.apt_dir()), ("apt".to_string(), "apt-arm64".to_string()));
    }

    #[test]
    fn qemu_arguments_per_arch() {
        assert_eq!(Arch::Amd64.machine_args(false), ["-accel", "tcg", "-cpu", "max"]);
        assert_eq!(Arch::Amd64.machine_args(true), ["-accel", "kvm", "-cpu", "host"]);
        let arm = Arch::Arm64.machine_args(false);
        assert_eq!(&arm[..2], ["-machine", "virt"]);
        assert!(arm.contains(&"max,pauth-impdef=on"));
        assert_eq!(Arch::Amd64.channel_args(), ["-serial", "chardev:results"]);
        assert_eq!(Arch::Arm64.channel_args(), ["-device", "pci-serial,chardev=results"]);
        assert_eq!((Arch::Arm64.console(), Arch::Arm64.results_channel()), ("ttyAMA0", "/dev/ttyS0"));
        assert_eq!((Arch::Amd64.console(), Arch::Amd64.results_channel()), ("ttyS0", "/dev/ttyS1"));
        assert_eq!(Arch::Arm64.qemu().0, "qemu-system-aarch64");
    }

    #[test]
    fn guest_builds_are_static_musl_linked_with_rust_lld() {
        assert_eq!(
            Arch::Amd64.cargo_args(),
            ["--config", "target.x86_64-unknown-linux-musl.linker=\"rust-lld\"", "--target", "x86_64-unknown-linux-musl"]
        );
        let a = Arch::Arm64.cargo_args();
        assert_eq!(a, ["--config", "target.aarch64-unknown-linux-musl.linker=\"rust-lld\"", "--target", "aarch64-unknown-linux-musl"]);
        assert_eq!(Arch::Arm64.bench_cargo_args(), None);
        if Arch::host() == Arch::Amd64 {
            let b = Arch::Amd64.bench_cargo_args().unwrap();
            assert!(b[1].contains("+crt-static") && b[3] == "x86_64-unknown-linux-gnu", "{b:?}");
        }
    }

    #[test]
    fn images_tell_their_architecture() {
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        let mut image = vec![0u8; 64];
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(Arch::of_image(&bz), Some(Arch::Amd64));
        assert_eq!(Arch::of_image(&image), Some(Arch::Arm64));
        assert_eq!(Arch::of_image(b"\x7fELF vmlinux"), None);
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x12] = 183;
        assert_eq!(Arch::of_elf(&elf), Some(Arch::Arm64));
        elf[0x12] = 62;
        assert_eq!(Arch::of_elf(&elf), Some(Arch::Amd64));
        elf[0x12] = 40; // EM_ARM
        assert_eq!(Arch::of_elf(&elf), None);
        assert_eq!(Arch::of_elf(b"#!/bin/sh"), None);
        assert_eq!((Arch::Amd64.tree_image(), Arch::Arm64.tree_image()), ("arch/x86/boot/bzImage", "arch/arm64/boot/Image"));
        assert!(Arch::Amd64.kernel_fragment().is_none());
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for a in Arch::ALL {
            if let Some(f) = a.kernel_fragment() {
                assert!(root.join(f).is_file(), "{f} exists");
            }
        }
    }

    #[test]
    fn release_from_the_banner() {
        let mut image = vec![0u8; 64];
        image.extend_from_slice(b"Linux version 6.12.118+deb13-arm64 (debian-kernel@lists.debian.org) #1\0");
        assert_eq!(banner_release(&image).as_deref(), Some("6.12.118+deb13-arm64"));
        assert_eq!(banner_release(b"no banner here"), None);
    }
}
