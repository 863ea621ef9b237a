//! The simulator's shared state: settings from the command line, the inventory, identities, sessions,
//! tickets, views, counters and control switches. One instance lives for the whole run.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::cert::Thumbprints;
use crate::control::{Control, Stats};
use crate::inventory::Inventory;
use crate::properties::Views;
use crate::sessions::Sessions;
use crate::tickets::Tickets;

/// Behaviour chosen on the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub user: String,
    pub password: String,
    /// The real VNC server behind every console (`HOST:PORT`).
    pub vnc: Option<String>,
    pub vnc_password: Option<String>,
    pub ticket_ttl: Duration,
    /// The host put in tickets; `None` means the listen address, `Some("")` an empty host.
    pub ticket_host: Option<String>,
    pub ticket_url: bool,
    /// Drop each webmks connection in the middle of update number N+1.
    pub close_mid_update_after: Option<u64>,
    pub slow: Duration,
    pub extra_vmware_messages: bool,
}

pub struct Sim {
    pub settings: Settings,
    pub inventory: Inventory,
    /// The address the HTTPS listener is bound to (its real port).
    pub local: SocketAddr,
    /// The thumbprints of the certificate the server presents.
    pub thumbprints: Thumbprints,
    /// The thumbprints put in tickets (another certificate's with `--wrong-thumbprint`).
    pub ticket_thumbprints: Thumbprints,
    pub sessions: Mutex<Sessions>,
    pub tickets: Mutex<Tickets>,
    pub views: Mutex<Views>,
    pub stats: Stats,
    pub control: Control,
}

/// Locks a mutex; a panic while it was held (a bug) poisons nothing the simulator cares about.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    /// The host written into tickets.
    pub fn ticket_host(&self) -> String {
        self.settings.ticket_host.clone().unwrap_or_else(|| self.local.ip().to_string())
    }
}

#[cfg(test)]
impl Sim {
    /// A simulator for unit tests: ESXi flavour, user root with password `pw`, VMs `on` (moid 1) and `off`
    /// (moid 2, powered off), listening on 127.0.0.1:8443 (nothing is bound).
    pub fn for_tests(refuse_tickets: u64) -> Sim {
        use crate::inventory::{parse_vm_spec, Flavour};
        let specs = [parse_vm_spec("on").unwrap(), parse_vm_spec("off,power=off").unwrap()];
        let thumbprints = Thumbprints { sha1: "AA:BB".into(), sha256: "CC:DD".into() };
        Sim {
            settings: Settings {
                user: "root".into(),
                password: "pw".into(),
                vnc: None,
                vnc_password: None,
                ticket_ttl: Duration::from_secs(60),
                ticket_host: None,
                ticket_url: true,
                close_mid_update_after: None,
                slow: Duration::ZERO,
                extra_vmware_messages: false,
            },
            inventory: Inventory::new(Flavour::Esxi, &specs).unwrap(),
            local: "127.0.0.1:8443".parse().unwrap(),
            ticket_thumbprints: thumbprints.clone(),
            thumbprints,
            sessions: Mutex::default(),
            tickets: Mutex::default(),
            views: Mutex::default(),
            stats: Stats::default(),
            control: Control::new(refuse_tickets),
        }
    }
}
