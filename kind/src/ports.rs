//! Loopback ports for cluster components.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Where ports are looked for when the kernel's ephemeral range leaves room below it.
const POOL: RangeInclusive<u16> = 10_000..=u16::MAX;

/// Linux's default `net.ipv4.ip_local_port_range`, used when /proc cannot be read.
const DEFAULT_EPHEMERAL: RangeInclusive<u16> = 32_768..=60_999;

/// Every port this process has handed out: none is handed out twice, so two components
/// started in one process never race each other for a port.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port on 127.0.0.1 for a component to listen on: free when chosen, never handed out
/// before by this process, and outside the kernel's ephemeral range when there is room.
///
/// The component binds it later, so the port must not be one the kernel may give meanwhile
/// to any outgoing connection as its source port: on a machine with a cluster already
/// running, its clients open such connections all the time, and a component that finds its
/// port taken exits (`bind: address already in use`). Ports outside the ephemeral range are
/// only taken by an explicit bind; the search starts at a random place so two processes
/// rarely look at the same ports.
pub fn free_port() -> Result<u16> {
    let ephemeral = ephemeral_range();
    let start = RandomState::new().hash_one(std::process::id());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let candidates = candidates(&ephemeral, start);
    if candidates.is_empty() {
        // The ephemeral range covers the pool: let the kernel choose.
        let port = kernel_port()?;
        handed_out.insert(port);
        return Ok(port);
    }
    pick(candidates, &mut handed_out).ok_or_else(|| {
        Error::Invalid(format!(
            "no free port on 127.0.0.1 in {}-{} outside the ephemeral range {}-{}",
            POOL.start(),
            POOL.end(),
            ephemeral.start(),
            ephemeral.end()
        ))
    })
}

/// The first candidate not handed out before that can be bound now; records it.
fn pick(candidates: Vec<u16>, handed_out: &mut BTreeSet<u16>) -> Option<u16> {
    let port = candidates
        .into_iter()
        .filter(|port| !handed_out.contains(port))
        .find(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).is_ok())?;
    handed_out.insert(port);
    Some(port)
}

/// The pool's ports outside `ephemeral`, rotated to begin at `start` (modulo their count).
fn candidates(ephemeral: &RangeInclusive<u16>, start: u64) -> Vec<u16> {
    let mut ports: Vec<u16> = POOL.filter(|p| !ephemeral.contains(p)).collect();
    if !ports.is_empty() {
        let at = (start % ports.len() as u64) as usize;
        ports.rotate_left(at);
    }
    ports
}

/// The kernel's `net.ipv4.ip_local_port_range`.
fn ephemeral_range() -> RangeInclusive<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_port_range(&text))
        .unwrap_or(DEFAULT_EPHEMERAL)
}

/// Reads `ip_local_port_range`'s two numbers ("32768\t60999\n").
fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    let low = numbers.next()?.ok()?;
    let high = numbers.next()?.ok()?;
    (low <= high).then_some(low..=high)
}

/// A port the kernel chooses (bind to 0, read, close).
fn kernel_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))
}

/// Checks that a port the user asked for can be bound; names the component when it cannot.
pub fn require_free(port: u16, component: &str) -> Result<u16> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(port),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::PortInUse {
            port,
            component: component.to_string(),
        }),
        Err(e) => Err(Error::io(
            format!("binding 127.0.0.1:{port} for {component}"),
            e,
        )),
    }
}

/// Whether anything listens on 127.0.0.1:`port` (TCP, IPv4 or IPv6), read from /proc/net.
pub fn is_listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .map(|content| listening_ports(&content).contains(&port))
            .unwrap_or(false)
    })
}

fn listening_ports(table: &str) -> Vec<u16> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            if *state != LISTEN {
                return None;
            }
            let port_hex = local.rsplit(':').next()?;
            u16::from_str_radix(port_hex, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_refused_with_the_component_named() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let err = require_free(port, "kube-apiserver")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("port {port} on 127.0.0.1 is already in use (wanted for kube-apiserver)")
        );
        assert!(is_listening(port));
        drop(held);
        let free = free_port().unwrap();
        assert_eq!(require_free(free, "x").unwrap(), free);
    }

    #[test]
    fn free_ports_are_outside_the_ephemeral_range_and_never_handed_out_twice() {
        let ephemeral = ephemeral_range();
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        if POOL.clone().any(|p| !ephemeral.contains(&p)) {
            for port in &ports {
                assert!(
                    !ephemeral.contains(port) && POOL.contains(port),
                    "{port} is in the ephemeral range {ephemeral:?} or outside {POOL:?}"
                );
            }
        }
    }

    #[test]
    fn a_port_taken_or_handed_out_before_is_skipped() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken = held.local_addr().unwrap().port();
        let given = free_port().unwrap();
        let next = free_port().unwrap();
        let mut handed_out = BTreeSet::from([given]);
        assert_eq!(
            pick(vec![taken, given, next], &mut handed_out),
            Some(next),
            "{taken} is held and {given} was handed out"
        );
        assert!(handed_out.contains(&next));
        assert_eq!(pick(vec![taken, given, next], &mut handed_out), None);
    }

    #[test]
    fn candidates_leave_out_the_ephemeral_range_and_start_where_asked() {
        let ports = candidates(&(32_768..=60_999), 5);
        assert_eq!(ports.len(), (32_768 - 10_000) + (65_535 - 61_000 + 1));
        assert_eq!(ports[0], 10_005);
        assert!(ports.iter().all(|p| !(32_768..=60_999).contains(p)));
        assert!(ports.contains(&61_000) && ports.contains(&32_767));
        // A range covering the whole pool leaves nothing: the kernel chooses then.
        assert!(candidates(&(1_024..=65_535), 7).is_empty());
    }

    #[test]
    fn the_port_range_is_read_as_the_kernel_writes_it() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32_768..=60_999));
        assert_eq!(parse_port_range("1024 65535"), Some(1_024..=65_535));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("x"), None);
        assert_eq!(parse_port_range(""), None);
    }

    #[test]
    fn listening_ports_reads_only_listen_sockets() {
        let table = "  sl  local_address rem_address   st\n\
                     0: 0100007F:1F90 00000000:0000 0A 0\n\
                     1: 0100007F:1F91 0100007F:1F90 01 0\n";
        assert_eq!(listening_ports(table), vec![0x1F90]);
    }
}
