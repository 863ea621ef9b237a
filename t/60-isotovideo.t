#!/usr/bin/perl
# Real isotovideo runs (os-autoinst from its Debian package, unmodified) of the tiny test distribution in
# t/distri against the busybox guest under QEMU (software emulation), with NativeVNC::Hook loaded through
# PERL5OPT as the README's worker set-up does: VNC_CLIENT=native must be served by consoles::NativeVNC, a run
# without VNC_CLIENT by os-autoinst's consoles::VNC; both jobs must pass, and the backend's log says which
# client served each. A third run adds a VMware webmks console (webmks-sim fronting the job's own QEMU VNC
# server): a connection dropped in the middle of typing and a stalled one, both survived.
use v5.36;
use Test::More;

use lib 't/lib';
use NativeVNC::Test::Isotovideo;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Util qw(free_tcp_port);

$SIG{ALRM} = sub { diag 'test did not finish within 600 s'; exit 1 };
alarm 600;

# Runs isotovideo to its end; returns the result of the test module and the job's log.
sub isotovideo (%vars) {
    my $run = NativeVNC::Test::Isotovideo->start(%vars);
    $run->finish(300) or $run->stop;
    return ($run->result, $run->log);
}

subtest 'VNC_CLIENT=native: consoles::NativeVNC serves the job' => sub {
    my ($result, $log) = isotovideo(VNC_CLIENT => 'native');
    is($result, 'ok', 'the job passed: assert_screen, type_string, a chord, the mouse') or diag substr($log, -4000);
    like($log, qr/VNC_CLIENT=native: consoles::NativeVNC serves the VNC console for localhost:59\d\d/,
        'the backend log says the native client took the console');
    unlike($log, qr/Error connecting to VNC server|capture loop failed/, 'no VNC errors');
};

subtest 'without VNC_CLIENT: os-autoinst\'s own consoles::VNC' => sub {
    my ($result, $log) = isotovideo();
    is($result, 'ok', 'the job passed with the stock client') or diag substr($log, -4000);
    unlike($log, qr/NativeVNC/, 'nothing in the log names the native client');
};

subtest 'a webmks console: relogin with a fresh ticket mid-typing, a stall, the job goes on' => sub {
    my $display = free_tcp_port(from => 5910, to => 5999) - 5900;
    my $password = 'Job:p@ss/w0rd';
    # The job's QEMU starts after the simulator; the simulator reaches it only when a console connects.
    my $sim = NativeVNC::Test::WebmksSim->start(
        vnc_host => '127.0.0.1', vnc_port => 5900 + $display,
        password => $password, args => ['--vm', 'sut,moid=7']);
    my $threshold = 3;
    my ($result, $log) = isotovideo(
        VNC_CLIENT => 'native',
        VNC => $display,
        VNC_STALL_THRESHOLD => $threshold,
        VMWARE_VNC_OVER_WS_CA_FILE => $sim->cert_file,
        WEBMKS_CONSOLE_URL => $sim->url(moid => 7),
        WEBMKS_SIM_CONTROL => sprintf('https://%s:%d/_sim/', $sim->host, $sim->port));
    is($result, 'ok', 'the job passed: select_console, assert_screen and typing through webmks')
      or diag substr($log, -6000);
    like($log, qr/consoles::NativeVNC serves the VNC console for webmks via 127\.0\.0\.1:\d+/,
        'the native client took the webmks console');
    like($log, qr/Error in VNC protocol - relogin: .*closed/, 'the dropped connection: a relogin');
    my @stalls = $log =~ /considering VNC stalled, no update for ([\d.]+) seconds/g;
    ok(@stalls, 'the stalled connection was noticed');
    cmp_ok($_, '<=', $threshold + 3, "stall noticed after $_ s (VNC_STALL_THRESHOLD $threshold)") for @stalls;
    my $stats = $sim->stats;
    # One connection at select_console, one after the drop, one after the stall: each with its own ticket.
    cmp_ok($stats->{tickets_used}, '>=', 3, "$stats->{tickets_used} tickets used");
    is($stats->{tickets_used}, $stats->{sessions_total}, 'one ticket per connection');
    is($stats->{tickets_rejected}, 0, 'no ticket used twice');
    cmp_ok($stats->{logouts}, '>=', 3, 'every API session logged out');
    unlike($log, qr/\Q$password\E/, 'the API password is in no log line');
    $sim->stop;
};

done_testing;
