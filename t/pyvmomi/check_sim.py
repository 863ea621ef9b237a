#!/usr/bin/env python3
"""Checks the webmks simulator with pyVmomi, VMware's own SDK, the way a real client uses it.

Usage: check_sim.py HOST PORT USER PASSWORD VMNAME INVENTORY_PATH

Connects with SmartConnect (certificate not verified), finds VMNAME through a container view, acquires a
webmks ticket, finds the same VM by INVENTORY_PATH (e.g. ha-datacenter/vm/NAME or DC0/vm/NAME), checks that
a wrong password raises vim.fault.InvalidLogin, and disconnects. Prints one JSON object with the ticket's
fields on stdout; exits non-zero with a message on stderr on any mismatch.
"""
import json
import ssl
import sys

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


def fail(message):
    print(f"check_sim.py: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 7:
        fail("usage: check_sim.py HOST PORT USER PASSWORD VMNAME INVENTORY_PATH")
    host, port, user, password, vm_name, inventory_path = sys.argv[1:]
    port = int(port)
    context = ssl._create_unverified_context()

    si = SmartConnect(host=host, port=port, user=user, pwd=password, sslContext=context)
    content = si.RetrieveContent()
    about = content.about
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    vms = list(view.view)
    names = [vm.name for vm in vms]
    matches = [vm for vm in vms if vm.name == vm_name]
    view.Destroy()
    if len(matches) != 1:
        fail(f"expected one VM named {vm_name!r} in the container view, got names {names!r}")
    vm = matches[0]

    ticket = vm.AcquireTicket("webmks")
    url = ticket.url or ""
    if not url.startswith("wss://") or "/ticket/" not in url:
        fail(f"ticket url {url!r} is not a wss://…/ticket/… URL")
    if not url.endswith("/ticket/" + ticket.ticket):
        fail(f"ticket url {url!r} does not end with the ticket")

    found = content.searchIndex.FindByInventoryPath(inventory_path)
    if found is None or found._moId != vm._moId:
        fail(f"FindByInventoryPath({inventory_path!r}) gave {found!r}, expected {vm!r}")
    missing = content.searchIndex.FindByInventoryPath(inventory_path + "-missing")
    if missing is not None:
        fail(f"FindByInventoryPath of a missing VM gave {missing!r}")

    try:
        SmartConnect(host=host, port=port, user=user, pwd=password + "-wrong", sslContext=context)
        fail("a wrong password logged in")
    except vim.fault.InvalidLogin as e:
        invalid_login = e.msg

    result = {
        "about": {"apiType": about.apiType, "apiVersion": about.apiVersion, "version": about.version},
        "vm": {"name": vm.name, "moid": vm._moId},
        "vm_names": names,
        "found_by_path": found._moId,
        "invalid_login": invalid_login,
        "ticket": {
            "ticket": ticket.ticket,
            "host": ticket.host,
            "port": ticket.port,
            "url": ticket.url,
            "cfgFile": ticket.cfgFile,
            "sslThumbprint": ticket.sslThumbprint,
            "certThumbprintList": [
                {"thumbprint": t.thumbprint, "hashAlgorithm": t.hashAlgorithm}
                for t in (ticket.certThumbprintList or [])
            ],
        },
    }
    Disconnect(si)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
