#!/usr/bin/perl
# Stall detection and relogin, as os-autoinst does them, against QEMU behind a relay that can stall or drop
# the connection: a stalled server is given a forced update request after 2 s and a new login after
# VNC_STALL_THRESHOLD more; with check_vnc_stalls off nothing happens; a dropped connection is logged and
# followed by a new login that works.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log);
use NativeVNC::Test::Guest;
use NativeVNC::Test::Image qw(read_ppm);
use NativeVNC::Test::Relay;
use NativeVNC::Test::Util qw(free_tcp_port wait_until);

use consoles::NativeVNC;

deadline(240);
my (@diag, @warnings);
capture_log(diag => \@diag, warn => \@warnings);

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
        read_ppm("$tmp/s.ppm")->{rgb} eq $guest->screendump->{rgb};
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

# os-autoinst's backend process installs a __DIE__ handler that stops the VM on every die, even one that is
# caught: a recoverable failure must not reach it.
my @backend_dies;
sub backend_die_handler ($message) { push @backend_dies, $message }

subtest 'the server closes the connection' => sub {
    @warnings = ();
    local $SIG{__DIE__} = \&backend_die_handler;
    $relay->drop;
    ok(capture_loop(15, sub { $relay->connections == 3 }), 'a new connection was made');
    is_deeply(\@backend_dies, [], 'the broken stream and the relogin did not reach the backend\'s __DIE__ handler');
    # A dropped TCP connection ends with a FIN or, if data was in flight, a reset: both are the server leaving.
    like(join("\n", @warnings),
        qr/Error in VNC protocol - relogin: (?:the server closed the connection|reading from the server: Connection reset by peer)/,
        'logged');
    $guest->run('echo after the drop > /dev/tty1');
    ok(screen_equals_screendump(), 'the new connection follows the screen');
};

subtest 'the server goes away while stall detection is off (a reboot): survived, keys kept' => sub {
    @warnings = @diag = @backend_dies = ();
    local $SIG{__DIE__} = \&backend_die_handler;
    local $bmwqemu::vars{VNC_CONNECT_SLEEP} = 0.2;
    $vnc->check_vnc_stalls(0);
    my $port = $relay->port;
    $relay->stop;
    ok(!capture_loop(3, sub { $vnc->socket }), 'the connection is down, the capture loop goes on');
    is(scalar(grep { /the server went away while stall detection is off/ } @warnings), 1, 'logged once');
    is(scalar(grep { /still away: Error connecting to VNC server/ } @diag), 1, 'the first failed attempt too');
    $vnc->map_and_send_key($_, undef, 0.25 / 30) for split(//, 'echo'), 'spc', split(//, 'away'), qw(spc > spc),
      split(//, '/tmp/away'), 'ret';
    $relay = NativeVNC::Test::Relay->start($guest->vnc_host, $guest->vnc_port, listen => $port);
    ok(capture_loop(10, sub { $vnc->socket }), 'logged in again once the server is back');
    ok((grep { /the VNC server is back after [\d.]+ s: logged in again/ } @diag), 'and says so');
    is($vnc->check_vnc_stalls, 0, 'stall detection stays off');
    is(wait_until(20, '/tmp/away', sub { $guest->run('cat /tmp/away 2>/dev/null || true') }), 'away',
        'the keys typed while the server was away arrived');
    ok(screen_equals_screendump(), 'the screen follows again');
    is_deeply(\@backend_dies, [], 'nothing reached the backend\'s __DIE__ handler');
    $vnc->check_vnc_stalls(1);
};

subtest 'connect attempts that fail: only the final VNCSetupError is a die' => sub {
    my $port = free_tcp_port();
    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 1.5;
    local $bmwqemu::vars{VNC_CONNECT_SLEEP} = 0.2;
    @warnings = @backend_dies = ();
    my $ok = do {
        local $SIG{__DIE__} = \&backend_die_handler;
        eval { consoles::NativeVNC->new({hostname => '127.0.0.1', port => $port})->login; 1 };
    };
    ok(!$ok, 'nobody listens: the login fails');
    isa_ok($@, 'OpenQA::Exception::VNCSetupError', '... with os-autoinst\'s exception');
    cmp_ok(scalar @warnings, '>=', 2, 'after several attempts') or diag explain \@warnings;
    is(scalar @backend_dies, 1, 'of which only the final error reached the __DIE__ handler')
      or diag explain \@backend_dies;
};

done_testing;
