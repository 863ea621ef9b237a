#!/usr/bin/perl
# Stall detection and relogin, as os-autoinst does them, against QEMU behind a relay that can stall or drop
# the connection: a stalled server is given a forced update request after 2 s and a new login after
# VNC_STALL_THRESHOLD more; with check_vnc_stalls off nothing happens; a dropped connection is logged and
# followed by a new login that works.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use Time::HiRes qw(time sleep);

use lib 't/lib', '/usr/lib/os-autoinst';
use bmwqemu;
use cv;
use NativeVNC::Test::Guest;
use NativeVNC::Test::Relay;
use NativeVNC::Test::Util qw(wait_until);

use consoles::NativeVNC;

cv::init();
require tinycv;

$SIG{ALRM} = sub { diag 'test did not finish within 240 s'; exit 1 };
alarm 240;

my (@diag, @warnings);
{
    no warnings 'redefine';
    *bmwqemu::diag = sub ($message, @) { push @diag, $message };
    *bmwqemu::fctwarn = sub ($message, @) { push @warnings, $message };
}

my $tmp = tempdir(CLEANUP => 1);
my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;
my $relay = NativeVNC::Test::Relay->start($guest->vnc_host, $guest->vnc_port);

my $vnc = consoles::NativeVNC->new({hostname => $relay->host, port => $relay->port});
$vnc->login;

# What os-autoinst's capture loop does every 0.25 s, for $seconds.
sub capture_loop ($seconds, $stop = sub { 0 }) {
    my $until = time + $seconds;
    while (time < $until) {
        $vnc->update_framebuffer;
        $vnc->send_update_request;
        return 1 if $stop->();
        sleep 0.1;
    }
    return 0;
}

sub screen_equals_screendump () {
    return wait_until(20, 'the screen equals the screendump', sub {
        $vnc->send_update_request(0);
        sleep 0.2;
        $vnc->update_framebuffer;
        my $fb = $vnc->_framebuffer or return 0;
        $fb->write("$tmp/s.ppm");
        NativeVNC::Test::Guest::read_ppm("$tmp/s.ppm")->{rgb} eq $guest->screendump->{rgb};
    });
}

ok(screen_equals_screendump(), 'connected through the relay');
is($relay->connections, 1, 'one connection');

subtest 'a stalled server gets a forced request, then a new login' => sub {
    local $bmwqemu::vars{VNC_STALL_THRESHOLD} = 1;
    @diag = ();
    $relay->freeze;
    my $frozen = time;
    ok(capture_loop(15, sub { $relay->connections == 2 }), 'a new connection was made');
    my $took = time - $frozen;
    cmp_ok($took, '>', 2, sprintf('not before 2 s without updates (%.1f s)', $took));
    cmp_ok($took, '<', 2 + 1 + 3, 'within 2 s + VNC_STALL_THRESHOLD + a margin');
    like(join("\n", @diag), qr/considering VNC stalled, no update for \d+\.\d\d seconds/, 'logged as os-autoinst does');
    $guest->run('echo after the stall > /dev/tty1');
    ok(screen_equals_screendump(), 'the new connection follows the screen');
};

subtest 'no relogin while check_vnc_stalls is off' => sub {
    $vnc->check_vnc_stalls(0);
    $relay->freeze;
    capture_loop(6);
    is($relay->connections, 2, 'no new connection after 6 s of stall');
    $relay->thaw;
    $guest->run('echo thawed > /dev/tty1');
    ok(screen_equals_screendump(), 'the same connection goes on when the server does');
    $vnc->check_vnc_stalls(1);
};

subtest 'the server closes the connection' => sub {
    @warnings = ();
    $relay->drop;
    ok(capture_loop(15, sub { $relay->connections == 3 }), 'a new connection was made');
    # A dropped TCP connection ends with a FIN or, if data was in flight, a reset: both are the server leaving.
    like(join("\n", @warnings),
        qr/Error in VNC protocol - relogin: (?:the server closed the connection|reading from the server: Connection reset by peer)/,
        'logged');
    $guest->run('echo after the drop > /dev/tty1');
    ok(screen_equals_screendump(), 'the new connection follows the screen');
};

done_testing;
