//! The simulator's shared state: settings from the command line, the inventory, identities, sessions,
//! tickets, the model (VMs, tasks, views, property filters), the running guests, counters and control
//! switches. One instance lives for the whole run.
//!
//! Lock order, where more than one is held: sessions, tickets, model, guests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::cert::Thumbprints;
use crate::collector::Pages;
use crate::control::{bump, Control, Stats};
use crate::filters::Filters;
use crate::guest::{Guest, GuestSettings};
use crate::inventory::Inventory;
use crate::objects::World;
use crate::rest::Generations;
use crate::sessions::{Api, Session, Sessions};
use crate::tasks::Tasks;
use crate::tickets::Tickets;
use crate::views::Views;
use crate::vms::Registry;

/// Behaviour chosen on the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub user: String,
    pub password: String,
    /// The real VNC server behind the consoles of `--vm` VMs (`HOST:PORT`).
    pub vnc: Option<String>,
    pub vnc_password: Option<String>,
    pub ticket_ttl: Duration,
    /// The host put in tickets; `None` means the listen address, `Some("")` an empty host.
    pub ticket_host: Option<String>,
    pub ticket_url: bool,
    /// Whether tickets carry sslThumbprint and certThumbprintList.
    pub ticket_thumbprints: bool,
    /// Drop each webmks connection in the middle of update number N+1.
    pub close_mid_update_after: Option<u64>,
    pub slow: Duration,
    pub extra_vmware_messages: bool,
    /// How long after a power-on the MKS is not available yet (AcquireTicket fails).
    pub mks_delay: Duration,
    /// How registered VMs' guests run; `None` when `--guest-kernel` and friends are missing.
    pub guests: Option<GuestSettings>,
    /// Whether `/sdk` is served (`--no-soap` turns it off).
    pub soap: bool,
    /// Which generations of the REST API the vCenter flavour serves.
    pub rest_generations: Generations,
}

impl Settings {
    /// Whether these are the one user's credentials.
    pub fn is_user(&self, user: &str, password: &str) -> bool {
        user == self.user && password == self.password
    }
}

/// What changes while the simulator runs, under one lock.
#[derive(Debug)]
pub struct Model {
    pub vms: Registry,
    pub tasks: Tasks,
    pub views: Views,
    pub pages: Pages,
    pub filters: Filters,
}

impl Model {
    /// The collector's view of everything, for a caller in `session`.
    pub fn world<'a>(&'a self, inv: &'a Inventory, session: Option<&'a Session>) -> World<'a> {
        World { inv, vms: &self.vms, tasks: &self.tasks, views: &self.views, session }
    }

    /// The collector's view and the property filters at once (filters read the one and change the other).
    pub fn world_and_filters<'a>(
        &'a mut self,
        inv: &'a Inventory,
        session: Option<&'a Session>,
    ) -> (World<'a>, &'a mut Filters) {
        (World { inv, vms: &self.vms, tasks: &self.tasks, views: &self.views, session }, &mut self.filters)
    }
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
    pub model: Mutex<Model>,
    /// The running guests of registered VMs, by moid.
    pub guests: Mutex<HashMap<String, Guest>>,
    /// Bumped whenever something property filters may report changes (tasks, power states, the VM list).
    pub changes: watch::Sender<u64>,
    pub stats: Stats,
    pub control: Control,
}

/// Locks a mutex; a panic while it was held (a bug) poisons nothing the simulator cares about.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    /// A simulator with empty sessions, tickets, tasks and views.
    pub fn new(
        settings: Settings,
        inventory: Inventory,
        vms: Registry,
        local: SocketAddr,
        thumbprints: Thumbprints,
        ticket_thumbprints: Thumbprints,
        control: Control,
    ) -> Sim {
        let model = Model {
            vms,
            tasks: Tasks::new(inventory.flavour),
            views: Views::default(),
            pages: Pages::default(),
            filters: Filters::default(),
        };
        Sim {
            settings,
            inventory,
            local,
            thumbprints,
            ticket_thumbprints,
            sessions: Mutex::default(),
            tickets: Mutex::default(),
            model: Mutex::new(model),
            guests: Mutex::default(),
            changes: watch::Sender::new(0),
            stats: Stats::default(),
            control,
        }
    }

    /// The host written into tickets.
    pub fn ticket_host(&self) -> String {
        self.settings.ticket_host.clone().unwrap_or_else(|| self.local.ip().to_string())
    }

    /// Tells waiting `WaitForUpdates` calls to look again.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// The live session of `api` with this id.
    pub fn session(&self, id: &str, api: Api) -> Option<Session> {
        lock(&self.sessions).get(id).filter(|s| s.api == api).cloned()
    }

    /// Opens a session of `api` for the user (SOAP Login, REST session create); returns its id, or `None` for
    /// wrong credentials. Both are counted.
    pub fn login(&self, user: &str, password: &str, api: Api) -> Option<String> {
        let [logins, failed, _] = self.stats.sessions(api);
        if !self.settings.is_user(user, password) {
            bump(failed);
            log!("{} Login as '{user}' refused", api.name());
            return None;
        }
        let id = lock(&self.sessions).login(user, api);
        bump(logins);
        log!("{} Login as '{user}'", api.name());
        Some(id)
    }

    /// Ends the live session `id`: its tickets stop working and its property filters go. Counted.
    pub fn logout(&self, id: &str) {
        let Some(session) = lock(&self.sessions).logout(id) else { return };
        lock(&self.model).filters.drop_session(id);
        let [_, _, logouts] = self.stats.sessions(session.api);
        bump(logouts);
        log!("{} Logout of '{}'", session.api.name(), session.user);
    }
}

#[cfg(any(test, fuzzing))]
impl Sim {
    /// A simulator for unit tests: ESXi 8.0, user root with password `pw`, VMs `on` (moid 1) and `off` (moid 2,
    /// powered off), listening on 127.0.0.1:8443 (nothing is bound), no datastores, no MKS delay.
    #[cfg(test)]
    pub fn for_tests(refuse_tickets: u64) -> Sim {
        Sim::for_tests_with(refuse_tickets, crate::version::Release::V8_0, crate::datastore::Datastores::default())
    }

    /// The same for another release, with datastores.
    #[cfg(test)]
    pub fn for_tests_with(
        refuse_tickets: u64,
        release: crate::version::Release,
        datastores: crate::datastore::Datastores,
    ) -> Sim {
        Sim::for_tests_as(crate::inventory::Flavour::Esxi, release, "pw", datastores, refuse_tickets)
    }

    /// The same as an ESXi host or a vCenter (`vc.test`, both REST generations), with a password of choice;
    /// no guests and no VNC server: nothing a request does leaves the process.
    pub fn for_tests_as(
        flavour: crate::inventory::Flavour,
        release: crate::version::Release,
        password: &str,
        datastores: crate::datastore::Datastores,
        refuse_tickets: u64,
    ) -> Sim {
        use crate::inventory::{parse_vm_spec, Flavour};
        let specs = [parse_vm_spec("on").expect("a VM spec"), parse_vm_spec("off,power=off").expect("a VM spec")];
        let thumbprints = Thumbprints { sha1: "AA:BB".into(), sha256: "CC:DD".into() };
        let settings = Settings {
            user: "root".into(),
            password: password.into(),
            vnc: None,
            vnc_password: None,
            ticket_ttl: Duration::from_secs(60),
            ticket_host: None,
            ticket_url: true,
            ticket_thumbprints: true,
            close_mid_update_after: None,
            slow: Duration::ZERO,
            extra_vmware_messages: false,
            mks_delay: Duration::ZERO,
            guests: None,
            soap: true,
            rest_generations: Generations::Both,
        };
        let host = match flavour {
            Flavour::Esxi => "esx.test",
            Flavour::Vcenter => "vc.test",
        };
        Sim::new(
            settings,
            Inventory::new(flavour, release, host, datastores),
            Registry::new(flavour, &specs).expect("the VMs"),
            "127.0.0.1:8443".parse().expect("an address"),
            thumbprints.clone(),
            thumbprints,
            Control::new(refuse_tickets),
        )
    }
}
