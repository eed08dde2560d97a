//! A minimal rtnetlink(7) client for the network cases, built on a
//! NETLINK_ROUTE socket with safe nix calls (no `ip` binary is assumed):
//! list the caller's network devices, set one up, add a veth pair or a
//! dummy device. Every request acts in the caller's network namespace.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

/// `IFF_UP` of netdevice(7).
pub const IFF_UP: u32 = libc::IFF_UP as u32;

/// One network device as RTM_GETLINK reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    /// Interface index.
    pub index: i32,
    /// Interface name.
    pub name: String,
    /// `IFF_*` flags.
    pub flags: u32,
    /// The driver's `IFLA_INFO_KIND` ("sit", "veth", ...), where it reports one
    /// (`lo` reports none).
    pub kind: Option<String>,
}

/// The fallback tunnel devices (name, `IFLA_INFO_KIND`) that the kernel puts
/// into every new network namespace when the tunnel driver is built in,
/// unless `net.core.fb_tunnels_only_for_init_net` is set
/// (Documentation/networking/ip-sysctl.rst). network_namespaces(7) does not
/// promise a new namespace holds `lo` alone, so these are tolerated, by name
/// and driver together.
pub const FALLBACK_TUNNELS: &[(&str, &str)] = &[
    ("sit0", "sit"),
    ("ip6tnl0", "ip6tnl"),
    ("tunl0", "ipip"),
    ("gre0", "gre"),
    ("gretap0", "gretap"),
    ("erspan0", "erspan"),
    ("ip_vti0", "vti"),
    ("ip6_vti0", "vti6"),
    ("ip6gre0", "ip6gre"),
];

impl Link {
    /// Whether this is one of the [`FALLBACK_TUNNELS`], matched by name and driver.
    pub fn is_fallback_tunnel(&self) -> bool {
        FALLBACK_TUNNELS.iter().any(|(n, k)| self.name == *n && self.kind.as_deref() == Some(*k))
    }
}

/// A device type that RTM_NEWLINK can create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A veth pair (veth(4)): the name given and a peer named `<name>p`.
    Veth,
    /// A dummy device.
    Dummy,
}

impl LinkKind {
    /// The `IFLA_INFO_KIND` string.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Veth => "veth",
            LinkKind::Dummy => "dummy",
        }
    }
}

/// An open NETLINK_ROUTE socket in the caller's network namespace.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
    let len = 4 + payload.len();
    let mut out = Vec::with_capacity(len.next_multiple_of(4));
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(len.next_multiple_of(4), 0);
    out
}

fn ifname(name: &str) -> Vec<u8> {
    let mut z = name.as_bytes().to_vec();
    z.push(0);
    nla(IFLA_IFNAME, &z)
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut m = vec![0u8; 4]; // family AF_UNSPEC, pad, type
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&change.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Rtnl {
    /// Opens and binds a NETLINK_ROUTE socket.
    pub fn open() -> Result<Rtnl, Errno> {
        let fd = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Sends one request and collects the payloads of the replies (type,
    /// payload) until the dump's NLMSG_DONE or the acknowledgement; a
    /// negative acknowledgement is returned as its errno.
    fn request(&mut self, ty: u16, flags: u16, payload: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, Errno> {
        self.seq += 1;
        let len = NLMSG_HDRLEN + payload.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut at = 0;
            while at + NLMSG_HDRLEN <= n {
                let mlen = u32_at(&buf, at) as usize;
                if mlen < NLMSG_HDRLEN || at + mlen > n {
                    return Err(Errno::EBADMSG);
                }
                let mty = u16_at(&buf, at + 4);
                let seq = u32_at(&buf, at + 8);
                let body = &buf[at + NLMSG_HDRLEN..at + mlen];
                at += mlen.next_multiple_of(4);
                if seq != self.seq {
                    continue;
                }
                match mty {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                        return if code == 0 { Ok(replies) } else { Err(Errno::from_raw(-code)) };
                    }
                    _ => replies.push((mty, body.to_vec())),
                }
            }
        }
    }

    /// RTM_GETLINK dump: every device of the caller's network namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, Errno> {
        let replies = self.request(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(0, 0, 0))?;
        let mut out = Vec::new();
        for (ty, body) in replies.into_iter().filter(|(ty, b)| *ty == RTM_NEWLINK && b.len() >= IFINFOMSG_LEN) {
            debug_assert_eq!(ty, RTM_NEWLINK);
            let index = u32_at(&body, 4) as i32;
            let flags = u32_at(&body, 8);
            let mut name = String::new();
            let mut kind = None;
            for (ty, value) in attributes(&body[IFINFOMSG_LEN..]) {
                match ty {
                    IFLA_IFNAME => name = c_string(value),
                    IFLA_LINKINFO => {
                        kind = attributes(value).into_iter().find(|(t, _)| *t == IFLA_INFO_KIND).map(|(_, v)| c_string(v));
                    }
                    _ => {}
                }
            }
            out.push(Link { index, name, flags, kind });
        }
        Ok(out)
    }

    /// RTM_NEWLINK setting IFF_UP on device `index`.
    pub fn set_up(&mut self, index: i32) -> Result<(), Errno> {
        self.request(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(index, IFF_UP, IFF_UP)).map(drop)
    }

    /// RTM_NEWLINK creating a device `name` of `kind` (for veth, with its
    /// peer `<name>p` in the same namespace).
    pub fn add_link(&mut self, name: &str, kind: LinkKind) -> Result<(), Errno> {
        let mut info = nla(IFLA_INFO_KIND, kind.name().as_bytes());
        if kind == LinkKind::Veth {
            let mut peer = ifinfomsg(0, 0, 0);
            peer.extend(ifname(&format!("{name}p")));
            info.extend(nla(IFLA_INFO_DATA | NLA_F_NESTED, &nla(VETH_INFO_PEER | NLA_F_NESTED, &peer)));
        }
        let mut payload = ifinfomsg(0, 0, 0);
        payload.extend(ifname(name));
        payload.extend(nla(IFLA_LINKINFO | NLA_F_NESTED, &info));
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &payload).map(drop)
    }
}

/// Device names in the caller's `/proc/self/net/dev` (proc(5)), the second
/// view of the same list.
pub fn proc_net_dev() -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string("/proc/self/net/dev")?;
    Ok(text.lines().skip(2).filter_map(|l| l.split_once(':')).map(|(name, _)| name.trim().to_string()).collect())
}

/// A link type RTM_NEWLINK can create without loading a module, with the
/// evidence, or why none was found. A case must not make the kernel load a
/// module (host state), so the type must be built in or already loaded.
pub fn available_link_kind() -> Result<(LinkKind, String), String> {
    let release = harness::probe::kernel_release();
    let kinds = [(LinkKind::Veth, "veth", "veth_newlink"), (LinkKind::Dummy, "dummy", "dummy_setup")];
    // The kernel's own config says what is built in (a module, =m, must be
    // loaded already: see below).
    if let Some(config) = harness::kconfig::KernelConfig::running() {
        for (kind, module, _) in kinds {
            let option = format!("CONFIG_{}", module.to_uppercase());
            if config.built_in(&option) {
                return Ok((kind, format!("{option}=y in {}", config.source())));
            }
        }
    }
    let lines = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let modules = lines("/proc/modules");
    let builtin_path = format!("/lib/modules/{release}/modules.builtin");
    let builtin = lines(&builtin_path);
    for (kind, module, _) in kinds {
        if std::path::Path::new(&format!("/sys/module/{module}")).exists() {
            return Ok((kind, format!("/sys/module/{module}")));
        }
        if modules.lines().any(|l| l.split(' ').next() == Some(module)) {
            return Ok((kind, "/proc/modules".into()));
        }
        if builtin.lines().any(|l| l.ends_with(&format!("/{module}.ko"))) {
            return Ok((kind, builtin_path));
        }
    }
    // Built in without parameters leaves no trace above; its code does in
    // the symbol table.
    let symbols = lines("/proc/kallsyms");
    for (kind, _, symbol) in kinds {
        if symbols.lines().any(|l| l.split([' ', '\t']).nth(2) == Some(symbol)) {
            return Ok((kind, format!("{symbol} in /proc/kallsyms")));
        }
    }
    Err("neither veth nor dummy is built in or loaded (checked the kernel config, /sys/module, /proc/modules, modules.builtin, /proc/kallsyms); \
         a case does not load modules"
        .into())
}

/// The netlink attributes (type without `NLA_F_NESTED`, value) in `buf`.
fn attributes(buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= buf.len() {
        let alen = u16_at(buf, at) as usize;
        if alen < 4 || at + alen > buf.len() {
            break;
        }
        out.push((u16_at(buf, at + 2) & !NLA_F_NESTED, &buf[at + 4..at + alen]));
        at += alen.next_multiple_of(4);
    }
    out
}

fn c_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end_matches('\0').to_string()
}
