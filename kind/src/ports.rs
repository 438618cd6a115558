//! Loopback ports for cluster components.

use std::net::{Ipv4Addr, TcpListener};

use crate::error::{Error, Result};

/// A port on 127.0.0.1 that was free a moment ago (bind to 0, read, close). Another process
/// may take it before the component binds; the component then fails with its log saying so.
pub fn free_port() -> Result<u16> {
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
        // The freed port itself may be taken again at once by a test running in parallel, so
        // the free case uses a fixed port outside the ephemeral range that nothing listens on.
        let free = (20_000..21_000)
            .find(|p| !is_listening(*p))
            .expect("a free port in 20000-20999");
        assert_eq!(require_free(free, "x").unwrap(), free);
    }

    #[test]
    fn listening_ports_reads_only_listen_sockets() {
        let table = "  sl  local_address rem_address   st\n\
                     0: 0100007F:1F90 00000000:0000 0A 0\n\
                     1: 0100007F:1F91 0100007F:1F90 01 0\n";
        assert_eq!(listening_ports(table), vec![0x1F90]);
    }
}
