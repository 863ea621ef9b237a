//! `VirtualMachine.AcquireTicket("webmks")`: a one-shot ticket for the VM's console, written in the dialect of
//! the lower of the API version the client asked for and the host's own (`url` needs 7.0, `certThumbprintList`
//! 7.0.3.1). Every version gets webmks tickets (ESXi's HTML5 host client used them since 6.5).
//!
//! Faults as ESXi gives them: InvalidState while the VM is powered off, and for `--mks-delay` seconds after a
//! power-on a SystemError whose reason is `'mks' is not available` (the console process is still starting;
//! clients retry). The REST console tickets ([`crate::rest`]) share the checks and the ticket issue.

use std::time::{Duration, Instant};

use crate::control::bump;
use crate::sim::{lock, Sim};
use crate::soap::{at_least, escape, requested_version, Fault, Request};
use crate::tickets::{self, short};
use crate::version::effective_version;
use crate::vms::Vm;

/// The SystemError reason while the MKS is starting.
pub const MKS_NOT_AVAILABLE: &str = "'mks' is not available";

/// Whether the MKS of a VM powered on at `powered_on_at` is still starting at `now`.
pub fn mks_starting(powered_on_at: Option<Instant>, delay: Duration, now: Instant) -> bool {
    powered_on_at.is_some_and(|t| now < t + delay)
}

/// Why a VM's console cannot have a ticket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    PoweredOff,
    /// Within `--mks-delay` of a power-on.
    MksStarting,
}

/// Whether the VM's console can have a ticket now.
pub fn console_ready(sim: &Sim, vm: &Vm) -> Result<(), NotReady> {
    if !vm.powered_on {
        return Err(NotReady::PoweredOff);
    }
    if mks_starting(vm.powered_on_at, sim.settings.mks_delay, Instant::now()) {
        return Err(NotReady::MksStarting);
    }
    Ok(())
}

/// A new ticket for the VM's console, acquired in `session` (counted).
pub fn issue(sim: &Sim, vm: &Vm, session: &str) -> String {
    let ticket = lock(&sim.tickets).issue(&vm.moid, session, sim.settings.ticket_ttl, Instant::now());
    bump(&sim.stats.tickets_issued);
    ticket
}

pub fn acquire_ticket(sim: &Sim, req: &Request, session: &str, soap_action: Option<&str>) -> Result<String, Fault> {
    let (ty, id) = req.this();
    let vm = (ty == "VirtualMachine").then(|| lock(&sim.model).vms.by_moid(id).cloned()).flatten();
    let vm = vm.ok_or_else(|| Fault::object_not_found(ty, id))?;
    if sim.control.take_refusal() {
        log!("AcquireTicket on {id}: refused as asked (--refuse-tickets)");
        return Err(Fault::object_not_found("VirtualMachine", id));
    }
    if req.param("ticketType").unwrap_or_default() != "webmks" {
        return Err(Fault::invalid_argument("ticketType"));
    }
    console_ready(sim, &vm).map_err(|e| match e {
        NotReady::PoweredOff => Fault::invalid_state(),
        NotReady::MksStarting => Fault::system_error(MKS_NOT_AVAILABLE),
    })?;
    let ticket = issue(sim, &vm, session);
    let version = effective_version(requested_version(soap_action), sim.inventory.about().api_version);
    let host = sim.ticket_host();
    let port = sim.local.port();
    let thumbs = &sim.ticket_thumbprints;
    let mut xml = format!("<ticket>{ticket}</ticket><cfgFile>{}</cfgFile>", escape(&vm.vm_path_name()));
    if !host.is_empty() {
        xml.push_str(&format!("<host>{}</host>", escape(&host)));
    }
    xml.push_str(&format!("<port>{port}</port>"));
    if sim.settings.ticket_thumbprints {
        xml.push_str(&format!("<sslThumbprint>{}</sslThumbprint>", thumbs.sha1));
    }
    if sim.settings.ticket_thumbprints && at_least(version.as_deref(), &[7, 0, 3, 1]) {
        xml.push_str(&format!(
            "<certThumbprintList><thumbprint>{}</thumbprint><hashAlgorithm>sha256</hashAlgorithm></certThumbprintList>",
            thumbs.sha256
        ));
    }
    if sim.settings.ticket_url && !host.is_empty() && at_least(version.as_deref(), &[7, 0]) {
        xml.push_str(&format!("<url>{}</url>", escape(&tickets::url(&host, port, &ticket))));
    }
    log!("AcquireTicket on {id} ({}): ticket {}", vm.name, short(&ticket));
    Ok(format!("<returnval>{xml}</returnval>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mks_delay() {
        let t = Instant::now();
        let d = Duration::from_secs(2);
        assert!(mks_starting(Some(t), d, t + Duration::from_millis(1999)));
        assert!(!mks_starting(Some(t), d, t + d));
        assert!(!mks_starting(None, d, t), "on from the start");
        assert!(!mks_starting(Some(t), Duration::ZERO, t));
    }
}
