#!/usr/bin/perl
# os-autoinst's svirt backend driving VMware, end to end, with real isotovideo (os-autoinst from its Debian
# package, unmodified) and every part that can be real: OpenSSH on port 22 of the simulated hosts, Debian's
# virsh with libvirt's esx driver, socat for the serial line, QEMU guests, and webmks-sim as the ESXi host
# (the one part that cannot be real here) on port 443. All of it runs in a private host (network, mount and
# PID namespaces over a private copy of the root file system, t/lib/NativeVNC/Test/PrivateHost.pm), so ports
# 22 and 443, root's password and /vmfs stay inside. One address, 127.0.0.1, is VIRSH_HOSTNAME (where virsh
# runs), VMWARE_HOST and VIRSH_GUEST, as in many openQA set-ups.
#
# The job (t/distri with BACKEND=svirt) builds the domain through the svirt console, define_and_start, then
# types into the `sut` console, checks the screen and reads a line from the serial port. Runs:
#  1. ESXi 6.5, VNC_CLIENT=native: the host's built-in VNC server, with VNC authentication.
#  2. vSphere 7.0 and 8.0, VMWARE_VNC_OVER_WS=1, VNC_CLIENT=native: webmks with a ticket for the domain id;
#     the simulator drops the console in the middle of a type_string and the whole line arrives.
#  3. The same with os-autoinst's own client: 6.5 over its VNC client, 7.0 through its VMWare.pm and
#     dewebsockify. What it does is recorded, not judged, where it differs.
#  4. vSphere 7.0 without VMWARE_VNC_OVER_WS: the native client fails within seconds, naming cause and fix;
#     os-autoinst's is recorded.
use v5.36;
use Test::More;

use lib 't/lib';
use NativeVNC::Test::PrivateHost;
BEGIN { NativeVNC::Test::PrivateHost::enter(timeout => 1500) }

use NativeVNC::Test::Svirt;
use NativeVNC::Test::Util qw(file_tail);

$SIG{ALRM} = sub { diag 'test did not finish within 1400 s'; exit 1 };
alarm 1400;

my $site = NativeVNC::Test::Svirt->new;
my ($root_password, $vnc_password) = ($site->root_password, $site->vnc_password);

# Every log line that shows a password must be os-autoinst's own: its SSH command writing libvirt's auth file
# (the vSphere password) and the domain XML it logs before defining the VM (the VNC password). Our client's
# lines show none.
sub passwords_only_where_os_autoinst_logs_them ($log) {
    my @leaks = grep { /\Q$root_password\E|\Q$vnc_password\E/ && !/libvirtauth|credentials-vmware|^\s*password=|passwd=/ }
      split /\n/, $log;
    is_deeply(\@leaks, [], 'no password in any log line but os-autoinst\'s own auth file and domain XML')
      or diag join "\n", @leaks;
}

sub expect_ok ($run, $what) {
    is($run->result, 'ok', $what) or diag substr($run->log, -8000);
}

subtest 'ESXi 6.5, native client: the built-in VNC server with VNC authentication' => sub {
    my $host = $site->esxi_host('6.5');
    my $run = $site->job($host, VNC_CLIENT => 'native');
    expect_ok($run, 'the job passed: define_and_start, assert_screen, typing, a chord, the mouse, wait_serial');
    like($run->log, qr/consoles::NativeVNC serves the VNC console for 127\.0\.0\.1:5901/,
        'the sut console is NativeVNC on VIRSH_GUEST:5901');
    passwords_only_where_os_autoinst_logs_them($run->log);
};

for my $version ('7.0', '8.0') {
    subtest "vSphere $version, native client: webmks for the domain id, a drop in the middle of typing" => sub {
        # The VM's console is not available for 6 s after power-on: the first ticket requests fail.
        my $host = $site->esxi_host($version, '--mks-delay' => 6);
        my $run = $site->job($host, VNC_CLIENT => 'native', VMWARE_VNC_OVER_WS => 1,
            VMWARE_VNC_OVER_WS_CA_FILE => $host->cert_file, VMWARE_VNC_OVER_WS_REQUEST_DELAY => 2);
        expect_ok($run, 'the job passed, the dropped line included');
        my $log = $run->log;
        like($log, qr/consoles::NativeVNC serves the VNC console for webmks via 127\.0\.0\.1/,
            'the sut console is NativeVNC over webmks');
        my ($id) = $log =~ /<domain type='vmware' id='(\d+)'/;
        ok($id, "virsh dumpxml gives the domain id $id, a standalone host's integer moid (VIRSH_VM_ID)");
        like(file_tail($host->log_path, 10_000_000), qr/AcquireTicket on \Q$id\E \(openQA-SUT-1\)/,
            'the tickets are for that VM id');
        like($log, qr/'mks' is not available, trying \d+ more times/,
            'right after power-on, the ticket requests rode out the MKS not being available');
        like($log, qr/Error in VNC protocol - relogin: .*closed/, 'the dropped console logged in again');
        my $stats = $host->stats;
        cmp_ok($stats->{tickets_used}, '>=', 2, "$stats->{tickets_used} tickets, one per console connection");
        is($stats->{tickets_rejected}, 0, 'no ticket used twice');
        # libvirt logs in too (virsh define, start, dumpxml...); every session, its and ours, logs out.
        is($stats->{logouts}, $stats->{logins}, "every API session logged out ($stats->{logins} logins)");
        unlike($log, qr{/ticket/[0-9a-f]{8}}, 'no ticket in the log');
        passwords_only_where_os_autoinst_logs_them($log);
    };
}

subtest 'os-autoinst\'s own client on the same jobs' => sub {
    my $host = $site->esxi_host('6.5');
    my $run = $site->job($host);
    expect_ok($run, 'ESXi 6.5 through os-autoinst\'s VNC client');
    unlike($run->log, qr/NativeVNC/, 'nothing in the log names the native client');
    $host->stop;

    $host = $site->esxi_host('7.0');
    $run = $site->job($host, VMWARE_VNC_OVER_WS => 1, VMWARE_VNC_OVER_WS_INSECURE => 1);
    my $result = $run->result;
    note "vSphere 7.0 through os-autoinst's VMWare.pm and dewebsockify, console dropped mid-typing: $result";
    like($run->log, qr/Establishing VNC connection over WebSockets/, 'the stock client went through its webmks path');
    like($result, qr/boot_svirt: ok, shell: ok/, 'it reached the console and typed the first line');
    like($run->log, qr/considering VNC stalled/, 'it noticed the dropped console only by its stall detection');
};

# Seconds from selecting the sut console to the test module's death, from the job's log.
sub seconds_to_fail ($log) {
    my ($selected) = $log =~ /\[(\S+)\] [^\n]*<<< testapi::select_console\(testapi_console="sut"\)/;
    my ($died) = $log =~ /\[(\S+)\] [^\n]*# Test died: /;
    return undef unless $selected && $died;
    return seconds_of($died) - seconds_of($selected);
}

subtest 'vSphere 7.0 without VMWARE_VNC_OVER_WS: the native client fails fast, says why and what to do' => sub {
    my $host = $site->esxi_host('7.0');
    my $log = $site->job($host, VNC_CLIENT => 'native')->log;
    like($log, qr/Test died: Error connecting to VNC server <127\.0\.0\.1:5901>: .*refused.*: VMWARE_HOST 127\.0\.0\.1 runs VMware ESXi 7\.0[^,]*, which has no VNC server \(vSphere 7\.0 removed it\): set VMWARE_VNC_OVER_WS=1/,
        'the error names the cause and the fix');
    my $seconds = seconds_to_fail($log);
    ok(defined $seconds && $seconds < 5, sprintf 'the console failed %.1f s after it was selected', $seconds // -1);
    $host->stop;

    $host = $site->esxi_host('7.0');
    $log = $site->job($host)->log;
    my ($stock_error) = $log =~ /# Test died: ([^\n]*)/;
    note sprintf "os-autoinst's client on the same job: died %.1f s after selecting the console: %s",
      seconds_to_fail($log) // -1, $stock_error // '?';
    unlike($log, qr/VMWARE_VNC_OVER_WS=1/, 'os-autoinst\'s client does not say why');
};

# Seconds since midnight of an os-autoinst log timestamp (2026-12-06T03:30:00.123456Z).
sub seconds_of ($stamp) {
    my ($h, $m, $s) = $stamp =~ /T(\d\d):(\d\d):([\d.]+)/ or die "not a timestamp: $stamp";
    return $h * 3600 + $m * 60 + $s;
}

done_testing;
