//! network_namespaces(7): network devices, protocol stacks and ports belong
//! to the network namespace (T2.net). A new one has only the loopback
//! device, down; a device's state or a device created inside is seen there
//! and by a setns(2) joiner only; the same TCP port binds in two at once.

use std::fs;
use std::net::TcpListener;
use std::os::fd::AsFd;

use harness::note;
use harness::peer::{call, in_child, Spawn};
use harness::{check, check_eq, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsFlags, Privilege, Requires, Setup};

use crate::common::{in_new_ns, must_fail_with};
use crate::rtnetlink::{available_link_kind, proc_net_dev, Link, LinkKind, Rtnl, IFF_UP};

fn requires() -> Requires {
    Requires::kinds(&[Kind::Net]).privilege(Privilege::Admin)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "isolation.net.loopback",
            &["T2.net"],
            "a new network namespace has only `lo`, down; `lo` set up inside is up there and for a setns() joiner, \
             still down outside and in a sibling namespace",
            || loopback(Kind::Net.flag()),
        )
        .requires(requires()),
        Case::new(
            "isolation.net.same_port",
            &["T2.net"],
            "the same TCP port is bound in two network namespaces at once; a setns() joiner finds it taken; the \
             listening socket is listed in its namespace's /proc/net/tcp only",
            || same_port(Kind::Net.flag()),
        )
        .requires(requires()),
        Case::new(
            "isolation.net.device",
            &["T2.net"],
            "a veth pair or dummy device created in a new network namespace is listed there and for a setns() joiner, \
             not outside nor in a sibling namespace",
            || device(Kind::Net.flag()),
        )
        .requires(requires().probe(|| available_link_kind().err())),
    ]
}

/// The net cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new(
            "sabotage.isolation.net.loopback",
            &["T2.net"],
            "`lo` is set up without CLONE_NEWNET (inside a sandbox namespace): the outside must see it up",
            || must_fail_with(loopback(NsFlags::EMPTY), "outside"),
        )
        .requires(requires()),
        Case::new(
            "sabotage.isolation.net.same_port",
            &["T2.net"],
            "the first socket is bound without CLONE_NEWNET (inside a sandbox namespace): the outside must list it",
            || must_fail_with(same_port(NsFlags::EMPTY), "outside"),
        )
        .requires(requires()),
    ]
}

fn links() -> Result<Vec<Link>, CaseError> {
    Ok(Rtnl::open().setup("open a NETLINK_ROUTE socket")?.links()?)
}

fn lo_up() -> Result<bool, CaseError> {
    let lo = links()?.into_iter().find(|l| l.name == "lo").ok_or_else(|| CaseError::fail("no `lo` device"))?;
    Ok(lo.flags & IFF_UP != 0)
}

/// `inner`: CLONE_NEWNET for the claim, 0 when sabotaged. Runs in a sandbox
/// network namespace (the "outside"), so that the host's `lo` is never set.
fn loopback(inner: NsFlags) -> CaseResult {
    let own = links()?;
    in_new_ns(Kind::Net, NsFlags::EMPTY, || {
        let outside_before = lo_up()?;
        let mut inside = Spawn::clone(inner).spawn(|ch| {
            let fresh = (links()?, proc_net_dev()?);
            let mut rtnl = Rtnl::open().setup("open a NETLINK_ROUTE socket")?;
            let lo = fresh.0.iter().find(|l| l.name == "lo").map(|l| l.index).unwrap_or(1);
            rtnl.set_up(lo)?;
            ch.send(&(fresh, lo_up()?))?;
            ch.wait()
        })?;
        let ((fresh, dev), up_inside): ((Vec<Link>, Vec<String>), bool) = inside.recv()?;
        let joined = in_child(|| {
            NsFd::open(inside.proc(), Kind::Net)?.setns(Kind::Net.flag())?;
            lo_up()
        })?;
        let sibling = in_new_ns(Kind::Net, NsFlags::EMPTY, lo_up)?;
        let outside = lo_up()?;
        inside.go()?;
        inside.join()?;
        // network_namespaces(7): a new namespace has a loopback device, down,
        // and no device of another namespace. Built-in tunnel drivers add
        // their fallback device (sit0, tunl0, ...) to every namespace: those
        // are tolerated by name and driver, and noted.
        let tunnels: Vec<&str> = fresh.iter().filter(|l| l.is_fallback_tunnel()).map(|l| l.name.as_str()).collect();
        if !tunnels.is_empty() {
            note("fallback_tunnels", tunnels.join(","));
        }
        let names: Vec<&str> = fresh.iter().filter(|l| !l.is_fallback_tunnel()).map(|l| l.name.as_str()).collect();
        check_eq!(names, vec!["lo"], "devices of a new network namespace other than fallback tunnels (RTM_GETLINK)");
        let mut listed: Vec<&str> = fresh.iter().map(|l| l.name.as_str()).collect();
        listed.sort_unstable();
        let mut dev: Vec<&str> = dev.iter().map(String::as_str).collect();
        dev.sort_unstable();
        check_eq!(dev, listed, "devices of a new network namespace in /proc/self/net/dev, against RTM_GETLINK");
        let lo = fresh.iter().find(|l| l.name == "lo").map_or(IFF_UP, |l| l.flags);
        check_eq!(lo & IFF_UP, 0, "IFF_UP of `lo` in a new network namespace");
        check_eq!(up_inside, true, "`lo` up inside after RTM_NEWLINK set IFF_UP");
        check_eq!(joined, true, "`lo` up for a process that joined with setns(CLONE_NEWNET)");
        check_eq!(outside, outside_before, "`lo` state outside, after it was set up inside");
        check_eq!(sibling, false, "`lo` up in a sibling new network namespace");
        Ok(())
    })?;
    let lo = |v: Vec<Link>| v.into_iter().find(|l| l.name == "lo");
    check_eq!(lo(links()?), lo(own), "`lo` of the case's own namespace");
    Ok(())
}

/// Listening TCP sockets of the caller's namespace: (port, inode), from
/// /proc/self/net/tcp (proc(5)).
fn tcp_listeners() -> Result<Vec<(u16, u64)>, CaseError> {
    let text = fs::read_to_string("/proc/self/net/tcp")?;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 9 && f[3] == "0A" {
            let port = f[1].rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Ok(ino)) = (port, f[9].parse()) {
                out.push((port, ino));
            }
        }
    }
    Ok(out)
}

/// A listening socket on `port` (0: any) of every address, and its inode.
fn listen(port: u16) -> Result<(TcpListener, u16, u64), CaseError> {
    let l = TcpListener::bind(("0.0.0.0", port))?;
    let port = l.local_addr()?.port();
    let ino = nix::sys::stat::fstat(l.as_fd())?.st_ino;
    Ok((l, port, ino))
}

/// `inner`: CLONE_NEWNET for the first socket's namespace, 0 when sabotaged.
fn same_port(inner: NsFlags) -> CaseResult {
    let (port, first, second) = in_new_ns(Kind::Net, NsFlags::EMPTY, || {
        let mut a = Spawn::clone(inner).spawn(|ch| {
            let (_l, port, ino) = listen(0)?;
            ch.send(&(port, ino, tcp_listeners()?))?;
            ch.wait()
        })?;
        let (port, first, listed_in_a): (u16, u64, Vec<(u16, u64)>) = a.recv()?;
        let (second, listed_in_b) = call(&Spawn::clone(Kind::Net.flag()), || {
            let (_l, _, ino) = listen(port)?;
            Ok((ino, tcp_listeners()?))
        })?;
        let joined = in_child(|| {
            NsFd::open(a.proc(), Kind::Net)?.setns(Kind::Net.flag())?;
            expect_errno!(TcpListener::bind(("0.0.0.0", port)), Errno::EADDRINUSE, "binding port {port} again in its namespace");
            tcp_listeners()
        })?;
        let outside = tcp_listeners()?;
        a.go()?;
        a.join()?;
        check!(listed_in_a.contains(&(port, first)), "the first listener (port {port}, inode {first}) in its namespace's /proc/net/tcp");
        check!(!listed_in_b.iter().any(|(_, i)| *i == first), "the first listener in the sibling namespace's /proc/net/tcp");
        check!(listed_in_b.contains(&(port, second)), "the second listener (port {port}, inode {second}) in its namespace's /proc/net/tcp");
        check!(joined.contains(&(port, first)), "the first listener in /proc/net/tcp of a setns(CLONE_NEWNET) joiner");
        check!(!outside.iter().any(|(_, i)| *i == first), "the first listener (inode {first}) in /proc/net/tcp outside");
        Ok((port, first, second))
    })?;
    let own = tcp_listeners()?;
    check!(!own.iter().any(|(_, i)| *i == first || *i == second), "listeners of port {port} in the case's own /proc/net/tcp");
    Ok(())
}

const DEVICE: &str = "nsv0";

/// `inner`: CLONE_NEWNET for the claim.
fn device(inner: NsFlags) -> CaseResult {
    let (kind, _) = available_link_kind().setup("find a link type")?;
    let names = || -> Result<Vec<String>, CaseError> { Ok(links()?.into_iter().map(|l| l.name).collect()) };
    let has = |v: &[String]| v.iter().any(|n| n == DEVICE);
    in_new_ns(Kind::Net, NsFlags::EMPTY, || {
        let mut inside = Spawn::clone(inner).spawn(|ch| {
            Rtnl::open().setup("open a NETLINK_ROUTE socket")?.add_link(DEVICE, kind)?;
            ch.send(&(names()?, proc_net_dev()?))?;
            ch.wait()
        })?;
        let (seen_inside, dev_inside): (Vec<String>, Vec<String>) = inside.recv()?;
        let joined = in_child(|| {
            NsFd::open(inside.proc(), Kind::Net)?.setns(Kind::Net.flag())?;
            names()
        })?;
        let sibling = in_new_ns(Kind::Net, NsFlags::EMPTY, names)?;
        let outside = names()?;
        inside.go()?;
        inside.join()?;
        check!(has(&seen_inside) && has(&dev_inside), "{} device {DEVICE} inside: {seen_inside:?}, {dev_inside:?}", kind.name());
        if kind == LinkKind::Veth {
            check!(seen_inside.iter().any(|n| *n == format!("{DEVICE}p")), "the veth peer {DEVICE}p inside: {seen_inside:?}");
        }
        check!(has(&joined), "{DEVICE} for a setns(CLONE_NEWNET) joiner: {joined:?}");
        check!(!has(&outside), "{DEVICE} outside: {outside:?}");
        check!(!has(&sibling), "{DEVICE} in a sibling new network namespace: {sibling:?}");
        Ok(())
    })
}
