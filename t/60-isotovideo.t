#!/usr/bin/perl
# Real isotovideo runs (os-autoinst from its Debian package, unmodified) of the tiny test distribution in
# t/distri against the busybox guest under QEMU (software emulation), with NativeVNC::Hook loaded through
# PERL5OPT as the README's worker set-up does: VNC_CLIENT=native must be served by consoles::NativeVNC, a run
# without VNC_CLIENT by os-autoinst's consoles::VNC; both jobs must pass, and the backend's log says which
# client served each.
use v5.36;
use Test::More;

use lib 't/lib';
use NativeVNC::Test::Isotovideo;

$SIG{ALRM} = sub { diag 'test did not finish within 400 s'; exit 1 };
alarm 400;

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

done_testing;
