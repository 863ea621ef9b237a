# A tiny os-autoinst test distribution for t/60-isotovideo.t: the busybox guest of tools/build-guest.
use v5.36;
use testapi;
use autotest;

autotest::loadtest('tests/shell.pm');

# With WEBMKS_CONSOLE_URL (a webmks-sim fronting this job's QEMU VNC server), a second VNC console on the
# same guest, reached the way vSphere 7+ VMs are: a vSphere ticket and a WebSocket.
if (my $url = get_var('WEBMKS_CONSOLE_URL')) {
    $testapi::distri->add_console('webmks', 'vnc-base', {hostname => 'webmks-guest', port => 5900, vmware_vnc_over_ws_url => $url});
    autotest::loadtest('tests/webmks.pm');
}

1;
