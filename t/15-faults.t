#!/usr/bin/perl
# Faults over real transports: QEMU's VNC server (and TigerVNC's Xvnc for a wrong password) behind a
# fault-injecting relay (t/bin/relay). The server dies in the middle of a rectangle, resets the connection,
# half-opens it, sends one byte a second, floods the client with updates, sends absurd sizes and corrupt zlib
# data. Each case must end, within a stated time, in an error whose kind and message say what happened, or in a
# new login after which the screen equals QEMU's own screendump; keys typed while the connection is broken
# must reach the guest after the new login; nothing may panic and the process goes on.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log error_of message_of);
use NativeVNC::Test::Guest;
use NativeVNC::Test::Relay;
use NativeVNC::Test::Xvnc;
use NativeVNC::Test::Util qw(slurp wait_until);

use NativeVNC;
use consoles::NativeVNC;

deadline(300);
my $tmp = tempdir(CLEANUP => 1);

# The core writes to standard error directly (a Rust panic would): keep it in a file, checked at the end.
open my $original_stderr, '>&', \*STDERR or die "dup stderr: $!";
open STDERR, '>', "$tmp/stderr" or die "$tmp/stderr: $!";
STDERR->autoflush(1);
my $stderr_restored;

sub restore_stderr () {
    return slurp("$tmp/stderr") // '' if $stderr_restored++;
    open STDERR, '>&', $original_stderr or die "restore stderr: $!";
    my $stderr = slurp("$tmp/stderr") // '';
    print STDERR $stderr;
    return $stderr;
}
END { restore_stderr() unless $stderr_restored }

my (@diag, @warnings);
capture_log(diag => \@diag, warn => \@warnings);
$bmwqemu::vars{VNC_STALL_THRESHOLD} = 1;
$bmwqemu::vars{VNC_CONNECT_SLEEP} = 0.2;
$bmwqemu::vars{VNC_TIMEOUT_LOCAL} = 5;

# Time bounds, in seconds.
use constant {
    RELOGIN_AFTER_BREAK => 3,      # a broken connection (FIN or RST) to the new login
    RELOGIN_AFTER_STALL => 6,      # no update: 2 s, a forced request, VNC_STALL_THRESHOLD 1 s more, a margin
    CRAFTED_ERROR => 2,            # crafted server bytes to the client's error
    CAPTURE_CALL => 1,             # one update_framebuffer while flooded
    WRONG_PASSWORD => 5,           # the login with a wrong password to its error
};

my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;
my $relay = NativeVNC::Test::Relay->start($guest->vnc_host, $guest->vnc_port);
my $vnc = consoles::NativeVNC->new({hostname => $relay->host, port => $relay->port});
$vnc->login;

my $slowest_capture = 0;

# What os-autoinst's capture loop does, until $stop returns true or $seconds pass; true if it stopped.
sub capture_loop ($seconds, $stop) {
    my $until = time + $seconds;
    while (time < $until) {
        my $started = time;
        $vnc->update_framebuffer;
        my $took = time - $started;
        $slowest_capture = $took if $took > $slowest_capture;
        $vnc->send_update_request;
        return 1 if $stop->();
        sleep 0.05;
    }
    return 0;
}

sub relogged_in ($connections) {
    return sub { $relay->connections > $connections && $vnc->socket && $vnc->_framebuffer };
}

sub screen_matches ($what) {
    is($guest->console_matches($vnc, $what, 20), 0, "$what: the screen equals QEMU's screendump");
}

# Types a shell command into the guest's console shell, as os-autoinst's type_string does.
sub type_command ($command) {
    $vnc->map_and_send_key($_ eq ' ' ? 'spc' : $_, undef, 0.01) for split //, $command;
    $vnc->map_and_send_key('ret', undef, 0.01);
}

# Types "echo WORD > /tmp/WORD" and checks the file appears in the guest with WORD in it.
sub typed_word_arrives ($word, $what) {
    my $content = eval {
        wait_until(20, "/tmp/$word in the guest", sub { $guest->run("cat /tmp/$word 2>/dev/null || true") });
    };
    is($content, $word, "$what: the keys typed meanwhile reached the guest");
}

sub warnings_since ($count) { join "\n", @warnings[$count .. $#warnings] }

# What the console logs before a new login after a broken stream; a reset's words.
my $RELOGIN = qr/^Error in VNC protocol - relogin: /m;
my $RESET = qr/Connection reset by peer \(os error 104\)$/;
my $PIPE = qr/Broken pipe \(os error 32\)$/;

ok(capture_loop(10, relogged_in(0)), 'connected through the relay');
screen_matches('connected');

subtest 'the server dies in the middle of a rectangle' => sub {
    my ($n, $w) = ($relay->connections, scalar @warnings);
    $guest->run('cat /dev/urandom > /dev/fb0 2>/dev/null; true');    # noise: megabytes for a full update
    $relay->cut_after(100_000);
    $vnc->send_update_request(0);
    wait_until(10, 'the relay cutting the connection', sub { $relay->closed($n) });
    my $cut = time;
    sleep 0.2;
    type_command('echo cut > /tmp/cut');
    ok(capture_loop(RELOGIN_AFTER_BREAK, relogged_in($n)), 'a new login');
    my $took = time - $cut;
    cmp_ok($took, '<', RELOGIN_AFTER_BREAK, sprintf('within %d s (%.2f s)', RELOGIN_AFTER_BREAK, $took));
    # A socket closed with unread data sends a reset instead of a FIN: both are the server going away, and so
    # is a write that finds the connection gone (the update's pixels wait unread until they are drawn).
    like(warnings_since($w),
        qr/$RELOGIN(?:the server closed the connection$|reading from the server: $RESET|writing to the server: $PIPE)/m,
        'logged');
    typed_word_arrives('cut', 'cut');
    screen_matches('after the cut');
};

subtest 'a TCP reset' => sub {
    my ($n, $w) = ($relay->connections, scalar @warnings);
    is($relay->reset, 1, 'the relay reset the connection');
    my $reset = time;
    sleep 0.2;
    type_command('echo reset > /tmp/reset');
    ok(capture_loop(RELOGIN_AFTER_BREAK, relogged_in($n)), 'a new login');
    my $took = time - $reset;
    cmp_ok($took, '<', RELOGIN_AFTER_BREAK, sprintf('within %d s (%.2f s)', RELOGIN_AFTER_BREAK, $took));
    like(warnings_since($w), qr/$RELOGIN(?:reading from|writing to) the server: $RESET/m, 'logged');
    typed_word_arrives('reset', 'reset');
    screen_matches('after the reset');
};

subtest 'a half-open connection' => sub {
    my ($n, $d) = ($relay->connections, scalar @diag);
    is($relay->half_open, 1, 'the relay stopped the connection, both ways');
    my $stopped = time;
    # The client's kernel takes these keys and the relay never reads them; stall detection then gives up the
    # connection. Nothing the caller queued may be lost: they must go again on the new connection.
    type_command('echo halfopen > /tmp/halfopen');
    ok(capture_loop(RELOGIN_AFTER_STALL + 2, relogged_in($n)), 'a new login');
    my $took = time - $stopped;
    cmp_ok($took, '<', RELOGIN_AFTER_STALL, sprintf('within %d s (%.2f s)', RELOGIN_AFTER_STALL, $took));
    like(join("\n", @diag[$d .. $#diag]), qr/considering VNC stalled, no update for \d+\.\d\d seconds/, 'logged');
    typed_word_arrives('halfopen', 'half-open');
    screen_matches('after the half-open connection');
};

subtest 'one byte a second' => sub {
    my ($n, $d) = ($relay->connections, scalar @diag);
    $guest->run('cat /dev/urandom > /dev/fb0 2>/dev/null; true');
    # The half-open connection of the case before is still open at the relay.
    cmp_ok($relay->trickle(1), '>=', 1, 'the relay slowed the server down');
    my $slowed = time;
    $vnc->send_update_request(0);
    type_command('echo trickle > /tmp/trickle');
    ok(capture_loop(RELOGIN_AFTER_STALL + 2, relogged_in($n)), 'a new login');
    my $took = time - $slowed;
    cmp_ok($took, '<', RELOGIN_AFTER_STALL, sprintf('within %d s (%.2f s)', RELOGIN_AFTER_STALL, $took));
    like(join("\n", @diag[$d .. $#diag]), qr/considering VNC stalled, no update for \d+\.\d\d seconds/, 'logged');
    typed_word_arrives('trickle', 'trickle');
    screen_matches('after the trickle');
};

sub rss_kib () {
    my $status = slurp('/proc/self/status') // '';
    return $status =~ /^VmRSS:\s+(\d+) kB/m ? $1 : 0;
}

# A FramebufferUpdate of one rectangle.
sub update ($x, $y, $w, $h, $encoding, $data = '') {
    return pack('CxnnnnnN', 0, 1, $x, $y, $w, $h, $encoding & 0xffffffff) . $data;
}

subtest 'a flood of unsolicited updates' => sub {
    # 64 small Raw updates (16x16, 32-bit pixels as the client asked), sent over and over without end.
    my $flood = join '', map { update(($_ % 8) * 16, int($_ / 8) * 16, 16, 16, 0, pack('N', $_ * 0x030507) x 256) }
      0 .. 63;
    $relay->inject($flood, repeat => 0);
    my $n = $relay->connections;
    $relay->drop;
    ok(capture_loop(RELOGIN_AFTER_BREAK, relogged_in($n)), 'a new login, which the flood takes');
    my $flooded = $n + 1;
    wait_until(5, 'the flood', sub { $vnc->update_framebuffer });
    my $rss = rss_kib();
    $slowest_capture = 0;
    type_command('echo flood > /tmp/flood');
    capture_loop(5, sub { 0 });
    cmp_ok($slowest_capture, '<', CAPTURE_CALL,
        sprintf('update_framebuffer returned within %d s while flooded (slowest %.3f s)', CAPTURE_CALL,
            $slowest_capture));
    my $rectangles = $vnc->encoding_counts->{0} // 0;
    cmp_ok($rectangles, '>', 10_000, "thousands of updates arrived ($rectangles)");
    is($relay->connections, $flooded, 'no relogin: the flood is not a stall');
    ok(!$relay->closed($flooded), 'the flood is still going on');
    my $keys = grep { $_->[1] } $relay->key_events($flooded);
    is($keys, length('echo flood > /tmp/flood') + 2, 'every key press went out during the flood (shift for >, return)');
    typed_word_arrives('flood', 'flood');
    my $grown = (rss_kib() - $rss) / 1024;
    cmp_ok($grown, '<', 64, sprintf('memory bounded: grew %.1f MiB while flooded', $grown));
    $relay->drop;
    ok(capture_loop(RELOGIN_AFTER_BREAK, relogged_in($flooded)), 'a new login after the flood');
    screen_matches('after the flood');
};

# Crafted server bytes after the real handshake, to a NativeVNC::Client with io_timeout IO_TIMEOUT: [what, bytes,
# expected]. Expected is an error (kind, message, within seconds), or that the client skips the message and
# decodes the update that follows (goes_on). Memory must not grow by what a message claims.
use constant IO_TIMEOUT => 2;
my $valid = update(0, 0, 1, 1, 0, pack('V', 0x123456));    # the client's format: little-endian, red at bit 16
my @crafted = (
    ['a rectangle outside the framebuffer', update(1000, 700, 100, 100, 0, "\x80" x 40_000),
        {kind => 'protocol',
            message => qr/^Raw rectangle at 1000,700 size 100x100 lies outside the 1024x768 framebuffer$/}],
    ['a huge DesktopSize', update(0, 0, 65535, 65535, -223),
        {kind => 'protocol', message => qr/^framebuffer size 65535x65535 exceeds the limit of \d+ pixels$/}],
    ['cut text claiming 2 GiB, then nothing', pack('CxxxN', 3, 0x7fffffff) . 'x' x 1000,
        {kind => 'timeout', within => IO_TIMEOUT + 1,
            message => qr/^the server stopped sending in the middle of a message for ${\IO_TIMEOUT} s$/}],
    ['cut text of 4 MiB, over the limit', pack('CxxxN', 3, 4 << 20) . 'x' x (4 << 20) . $valid, {goes_on => 1}],
    ['65535 colour map entries from entry 65535', pack('Cxnn', 1, 65535, 65535) . "\0" x (6 * 65535) . $valid,
        {goes_on => 1}],
    ['a ZRLE rectangle claiming 4 GiB', update(0, 0, 64, 64, 16, pack('N', 0xffffffff) . "\0" x 100),
        {kind => 'protocol', message => qr/^ZRLE data of 4294967295 bytes exceeds the limit of \d+ bytes$/}],
    ['a ZRLE rectangle claiming 200 MiB', update(0, 0, 64, 64, 16, pack('N', 200 << 20) . "\0" x 100),
        {kind => 'protocol',
            message => qr/^ZRLE: zlib data of 209715200 bytes is more than the \d+ that \d+ bytes of .* compress to$/}],
    ['a Zlib rectangle claiming 4 GiB', update(0, 0, 64, 64, 6, pack('N', 0xffffffff) . "\0" x 100),
        {kind => 'protocol', message => qr/^Zlib data of 4294967295 bytes exceeds the limit of \d+ bytes$/}],
    ['a ZRLE rectangle with invalid deflate data', update(0, 0, 64, 64, 16, pack('N', 100) . "\xde\xad\xbe\xef" x 25),
        {kind => 'protocol', message => qr/^ZRLE: corrupt zlib data: /}],
    ['a Zlib rectangle with invalid deflate data', update(0, 0, 64, 64, 6, pack('N', 100) . "\xde\xad\xbe\xef" x 25),
        {kind => 'protocol', message => qr/^Zlib: corrupt zlib data: /}],
);

for my $case (@crafted) {
    my ($what, $bytes, $expected) = @$case;
    subtest "crafted: $what" => sub {
        $relay->inject($bytes);
        my $client = NativeVNC::Client->new;
        $client->connect({host => $relay->host, port => $relay->port, connect_timeout => 5, io_timeout => IO_TIMEOUT});
        my $n = $relay->connections;
        my $rss = rss_kib();
        $client->request_update(0);
        wait_until(10, 'the relay sending the crafted bytes', sub { $relay->injected($n) });
        my $sent = time;
        if ($expected->{goes_on}) {
            ok($client->wait_update(CRAFTED_ERROR), 'the update after it was decoded');
            is(error_of(sub { $client->poll }), '', 'no error');
            is_deeply([$client->snapshot->get_pixel(0, 0)], [0x56, 0x34, 0x12],
                'the stream is in step: its pixel is there');
        }
        else {
            my $within = $expected->{within} // CRAFTED_ERROR;
            # Pixel data is decoded when it is drawn: the client's own screen here. The first poll takes the updates
            # before it, so that the next reports the error.
            my $e = wait_until($within + 2, 'an error',
                sub { error_of(sub { $client->poll; $client->update(1); $client->poll }) });
            my $took = time - $sent;
            cmp_ok($took, '<', $within, sprintf('an error within %d s (%.2f s)', $within, $took));
            is(ref $e && $e->kind, $expected->{kind}, "a $expected->{kind} error");
            like(message_of($e), $expected->{message}, 'that says what was wrong: ' . message_of($e));
            is(message_of(error_of(sub { $client->poll })), message_of($e), 'the connection keeps its error');
        }
        my $grown = (rss_kib() - $rss) / 1024;
        cmp_ok($grown, '<', 32, sprintf('memory bounded: grew %.1f MiB', $grown));
    };
}

subtest 'crafted: invalid deflate data through the console: a new login' => sub {
    my ($n, $w) = ($relay->connections, scalar @warnings);
    $relay->inject(update(0, 0, 64, 64, 16, pack('N', 100) . "\xde\xad\xbe\xef" x 25));
    $relay->drop;
    my $dropped = time;
    ok(capture_loop(2 * RELOGIN_AFTER_BREAK, relogged_in($n + 1)), 'a login that gets the garbage, then another');
    my $took = time - $dropped;
    cmp_ok($took, '<', 2 * RELOGIN_AFTER_BREAK, sprintf('within %d s (%.2f s)', 2 * RELOGIN_AFTER_BREAK, $took));
    like(warnings_since($w), qr/${RELOGIN}ZRLE: corrupt zlib data: deflate decompression error: /m, 'logged');
    screen_matches('after the garbage');
};

subtest 'a wrong VNC password (Xvnc)' => sub {
    my $xvnc = NativeVNC::Test::Xvnc->start(password => 'right');
    my $xrelay = NativeVNC::Test::Relay->start($xvnc->host, $xvnc->port);
    my $started = time;
    my $e = error_of(sub {
        consoles::NativeVNC->new({hostname => $xrelay->host, port => $xrelay->port, password => 'wrongpw'})->login;
    });
    my $took = time - $started;
    cmp_ok($took, '<', WRONG_PASSWORD, sprintf('the login failed within %d s (%.2f s)', WRONG_PASSWORD, $took));
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'the error');
    my $failed = qr/VNC handshake with 127\.0\.0\.1:\d+: authentication failed: Authentication failure/;
    $failed = qr/$failed \(wrong VNC password\?\)$/;
    like(message_of($e), qr/^Error connecting to VNC server <127\.0\.0\.1:\d+>: $failed/,
        'says the authentication failed: ' . message_of($e));
    unlike(message_of($e), qr/wrongpw/, 'without the password');
    my $client = NativeVNC::Client->new;
    my $raw = error_of(sub { $client->connect({host => $xrelay->host, port => $xrelay->port, password => 'wrongpw'}) });
    is(ref $raw && $raw->kind, 'auth', 'NativeVNC::Client: an auth error');
    like(message_of($raw), qr/^$failed/, 'with the same words: ' . message_of($raw));
    my $right = consoles::NativeVNC->new({hostname => $xrelay->host, port => $xrelay->port, password => 'right'});
    is(error_of(sub { $right->login }), '', 'the right password logs in through the relay');
    is($xrelay->connections, 3, 'every attempt went through the relay');
};

subtest 'the process goes on, nothing panicked' => sub {
    $guest->run('echo still here > /dev/tty1');
    screen_matches('at the end');
    my $stderr = restore_stderr();
    unlike(join("\n", $stderr, @diag, @warnings), qr/panick/i, 'no panic in any output');
};

done_testing;
