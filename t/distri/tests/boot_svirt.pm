# Creates and starts the VM through os-autoinst's svirt console, as openSUSE's bootloader_svirt does for
# VMware: the domain gets a disk in the datastore, a VNC display on 5900 + VIRSH_INSTANCE (ESXi 6.x's built-in
# VNC server, with the job's password) and a serial port on VMWARE_SERIAL_PORT (a TCP port of the ESXi host,
# telnet protocol); define_and_start defines it with `virsh -c esx://...`, starts it and sets VIRSH_VM_ID (in
# the backend) from its domain id. Then the `sut` console (vnc-base on VIRSH_GUEST) is selected: plain VNC,
# or webmks with VMWARE_VNC_OVER_WS.
use v5.36;
use base 'basetest';
use testapi;

sub run ($self) {
    my $svirt = select_console('svirt');
    # The VM's disk, where libvirt puts the .vmx too: an image already in the datastore's openQA directory, as
    # for openSUSE's JeOS jobs (made here over SSH on the ESXi host; the guest boots from the kernel the
    # simulated host was given, but the host insists that the files a VM names exist).
    my $datastore = '/vmfs/volumes/' . get_required_var('VMWARE_DATASTORE') . '/openQA';
    my $disk = $svirt->name . 'a.vmdk';
    $svirt->run_cmd("mkdir -p $datastore && truncate -s 1G $datastore/$disk", domain => 'sshVMwareServer')
      and die "cannot make the disk image $datastore/$disk";
    $svirt->add_disk({file => $disk, dev_id => 'a'});
    $svirt->add_pty({pty_dev => 'serial', pty_dev_type => 'tcp', target_port => '0', protocol_type => 'telnet', source => 1});
    $svirt->add_vnc({port => 5900 + get_var('VIRSH_INSTANCE', 1)});
    $svirt->define_and_start;
    select_console('sut');
}

sub test_flags ($self) { {fatal => 1} }

1;
