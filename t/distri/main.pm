# A tiny os-autoinst test distribution for the real isotovideo runs of t/60-isotovideo.t and t/70-svirt.t: the
# busybox guest of tools/build-guest, under the qemu backend or as a VMware VM through the svirt backend.
use v5.36;
use testapi;
use autotest;

if (get_var('BACKEND', '') eq 'svirt') {
    # As openSUSE's init_consoles: the system under test is a VNC console on VIRSH_GUEST, whose VNC server is
    # the ESXi host's (6.x), or webmks through the vSphere API when VMWARE_VNC_OVER_WS is set.
    $testapi::password = get_required_var('PASSWORD');
    $testapi::distri->add_console('sut', 'vnc-base',
        {hostname => get_required_var('VIRSH_GUEST'), port => 5900 + get_var('VIRSH_INSTANCE', 1), password => $testapi::password});
    autotest::loadtest('tests/boot_svirt.pm');
    autotest::loadtest('tests/shell.pm');
    autotest::loadtest('tests/console_drop.pm') if get_var('VMWARE_VNC_OVER_WS') && get_var('WEBMKS_SIM_CONTROL');
    autotest::loadtest('tests/serial.pm');
}
else {
    autotest::loadtest('tests/shell.pm');
    # With WEBMKS_CONSOLE_URL (a webmks-sim fronting this job's QEMU VNC server), a second VNC console on the
    # same guest, reached the way vSphere 7+ VMs are: a vSphere ticket and a WebSocket.
    if (my $url = get_var('WEBMKS_CONSOLE_URL')) {
        $testapi::distri->add_console('webmks', 'vnc-base', {hostname => 'webmks-guest', port => 5900, vmware_vnc_over_ws_url => $url});
        autotest::loadtest('tests/webmks.pm');
    }
}

1;
