//! The running kernel's build configuration: which namespace kinds and
//! features it was built with, read from the kernel itself or its
//! distribution, never inferred from the behaviour a case verifies (the
//! `/proc/[pid]/ns` entries are claim N1: a kernel that lost one must fail,
//! not skip).
//!
//! Sources, first readable wins: `NSVERIFY_KERNEL_CONFIG` (a path; the VM
//! driver puts the config it recorded into the guest), `/proc/config.gz`
//! (CONFIG_IKCONFIG_PROC), `/boot/config-$(uname -r)`.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

/// Environment variable naming a kernel config file to use.
pub const CONFIG_ENV: &str = "NSVERIFY_KERNEL_CONFIG";

/// A parsed kernel `.config`.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    source: String,
    options: HashMap<String, String>,
}

impl KernelConfig {
    /// Parses `.config` text; `source` names where it came from.
    pub fn parse(source: &str, text: &str) -> KernelConfig {
        let options = text
            .lines()
            .filter_map(|l| l.trim().split_once('='))
            .filter(|(k, _)| k.starts_with("CONFIG_"))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        KernelConfig { source: source.into(), options }
    }

    /// Reads the running kernel's config from the first readable source, or
    /// `None` when there is none.
    pub fn read() -> Option<KernelConfig> {
        if let Some(path) = std::env::var_os(CONFIG_ENV) {
            let text = std::fs::read_to_string(&path).ok()?;
            return Some(KernelConfig::parse(&path.to_string_lossy(), &text));
        }
        if let Ok(file) = std::fs::File::open("/proc/config.gz") {
            let mut text = String::new();
            if flate2::read::GzDecoder::new(file).read_to_string(&mut text).is_ok() && text.contains("CONFIG_") {
                return Some(KernelConfig::parse("/proc/config.gz", &text));
            }
        }
        let boot = format!("/boot/config-{}", crate::probe::kernel_release());
        let text = std::fs::read_to_string(&boot).ok()?;
        Some(KernelConfig::parse(&boot, &text))
    }

    /// The config of the running kernel, read once per process.
    pub fn running() -> Option<&'static KernelConfig> {
        static CONFIG: OnceLock<Option<KernelConfig>> = OnceLock::new();
        CONFIG.get_or_init(KernelConfig::read).as_ref()
    }

    /// Where it was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The value of `name` (`"y"`, `"m"`, a number, a string), or `None`
    /// when it is not set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    /// Whether `name` is built in (`=y`).
    pub fn built_in(&self, name: &str) -> bool {
        self.get(name) == Some("y")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_set_unset_and_strings() {
        let c = KernelConfig::parse("t", "# c\nCONFIG_UTS_NS=y\n# CONFIG_TIME_NS is not set\nCONFIG_VETH=m\nCONFIG_LOCALVERSION=\"-x\"\n");
        assert!(c.built_in("CONFIG_UTS_NS"));
        assert!(!c.built_in("CONFIG_TIME_NS") && c.get("CONFIG_TIME_NS").is_none());
        assert_eq!(c.get("CONFIG_VETH"), Some("m"));
        assert_eq!(c.get("CONFIG_LOCALVERSION"), Some("-x"));
        assert_eq!(c.source(), "t");
    }
}
