#!/usr/bin/perl
# consoles::NativeVNC inside os-autoinst's own console classes: a real consoles::vnc_base (from the
# installed os-autoinst) holding the native object where it would hold consoles::VNC, driven through the
# methods backends and testapi call: screens, type_string, send_key, hold/release, mouse, disable, and two
# consoles in one process. (Whole isotovideo runs come with the per-job switch.)
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log);
use consoles::vnc_base;
use NativeVNC::Test::Guest;
use NativeVNC::Test::Util qw(wait_until);

use consoles::NativeVNC;

deadline(240);
capture_log();

my $tmp = tempdir(CLEANUP => 1);
my $guest = NativeVNC::Test::Guest->start(qemu_args => [map { ('-trace', $_) } qw(input_event_btn input_event_rel)]);
$guest->wait_ready;

# backend::baseclass's capture loop, reduced to what the consoles need from it: keep the screen updated for
# the given time. The real one runs in the isotovideo tests.
package CaptureLoop {
    sub new ($class, $console) { bless {console => $console}, $class }

    sub run_capture_loop ($self, $timeout = 0) {
        my $until = Time::HiRes::time + $timeout;
        do {
            $self->{console}->request_screen_update;
            Time::HiRes::sleep(0.01);
        } while Time::HiRes::time < $until;
    }
}

# A vnc_base console whose VNC object is consoles::NativeVNC: what connect_remote does, with the class
# replaced.
sub native_console ($name) {
    my $console = consoles::vnc_base->new($name, {hostname => $guest->vnc_host, port => $guest->vnc_port});
    $console->backend(CaptureLoop->new($console));
    $console->{backend} = $console->backend;
    $console->{mouse} = {x => -1, y => -1};
    $console->{vnc} = consoles::NativeVNC->new($console->{args});
    $console->{vnc}->login($console->{args}{connect_timeout});
    return $console;
}

sub screen_equals_screendump ($console) {
    my $diff;
    wait_until(
        20, 'the screen equals the screendump',
        sub {
            $console->request_screen_update({incremental => 0});
            sleep 0.1;
            my $screen = $console->current_screen or return 0;
            $screen->write("$tmp/s.ppm");
            my $mine = NativeVNC::Test::Guest::read_ppm("$tmp/s.ppm");
            return $mine->{rgb} eq $guest->screendump->{rgb};
        },
        interval => 0.2
    );
    return 1;
}

sub guest_file ($path) {
    wait_until(20, "$path written", sub { $guest->run("cat $path 2>/dev/null || true") });
}

my $console = native_console('sut');

subtest 'screens' => sub {
    isa_ok($console->current_screen, 'tinycv::Image', 'current_screen');
    ok(screen_equals_screendump($console), 'current_screen equals QEMU\'s screendump');
    is($console->mouse_width, 1024, 'mouse_width');
    is($console->mouse_height, 768, 'mouse_height');
};

subtest 'type_string and send_key as testapi calls them' => sub {
    local $bmwqemu::vars{TYPING_LIMIT} = 50;
    $console->type_string({text => "echo vnc_base-\$((3 * 3)) > /tmp/vb\n"});
    is(guest_file('/tmp/vb'), 'vnc_base-9', 'type_string typed exactly');

    $console->type_string({text => 'echo wrong', max_interval => 100});
    $console->send_key({key => 'ctrl-u'});
    $console->type_string({text => "echo right > /tmp/sk\n"});
    is(guest_file('/tmp/sk'), 'right', 'send_key sent a chord');

    $console->type_string({text => 'echo '});
    $console->hold_key({key => 'shift'});
    $console->send_key({key => 'q'});
    $console->release_key({key => 'shift'});
    $console->type_string({text => "q > /tmp/hold\n"});
    is(guest_file('/tmp/hold'), 'Qq', 'hold_key and release_key');
};

subtest 'TYPING_LIMIT: keys per second, as with os-autoinst\'s own client' => sub {
    local $bmwqemu::vars{TYPING_LIMIT} = 20;
    my $text = "echo rate-limited > /tmp/rate\n";
    my $start = time;
    $console->type_string({text => $text});
    my $took = time - $start;
    is(guest_file('/tmp/rate'), 'rate-limited', 'typed');
    # A lower bound only: the sleeps guarantee it, however slow the machine.
    my $least = length($text) / 20;
    cmp_ok($took, '>=', $least * 0.98, sprintf('%d keys took %.2f s, at least %.2f s at 20 keys/s', length $text, $took, $least));
    $start = time;
    $console->send_key({key => 'ctrl-u'}) for 1 .. 5;
    cmp_ok(time - $start, '>=', 5 / 20 + 5 * 0.2, 'send_key: 1/TYPING_LIMIT per key, then the capture loop');
};

subtest 'mouse' => sub {
    $console->mouse_set({x => 100, y => 100});
    $console->mouse_button({button => 'left', bstate => 1});
    $console->mouse_button({button => 'left', bstate => 0});
    is_deeply($console->mouse_hide({border_offset => 0}), {absolute => 0}, 'mouse_hide reports the pointer type');
    is_deeply($console->get_last_mouse_set({}), {x => 1023, y => 767}, 'the last position is tracked');
    my $log = wait_until(10, 'the click traced', sub {
        open my $fh, '<', $guest->qemu_log_path or die $!;
        my $l = do { local $/; <$fh> };
        $l =~ /button left, down 0/ && $l;
    });
    like($log, qr/button left, down 1.*button left, down 0/s, 'the click reached QEMU');
    like($log, qr/input_event_rel/, 'the moves too');
};

subtest 'two consoles in one process' => sub {
    my $second = native_console('second');
    ok(screen_equals_screendump($second), 'the second console has the screen');
    $second->type_string({text => "echo two > /tmp/two\n"});
    is(guest_file('/tmp/two'), 'two', 'and types');
    ok(screen_equals_screendump($console), 'the first one still follows the screen');
    $second->disable;
};

subtest 'disable_vnc_stalls and disable' => sub {
    is($console->disable_vnc_stalls, 0, 'disable_vnc_stalls returns 0 for serialisation');
    is($console->{vnc}->check_vnc_stalls, 0, 'stall detection is off');
    my $vnc = $console->{vnc};
    my $clients = sub { scalar @{ $guest->qmp('query-vnc')->{clients} // [] } };
    # QEMU notices a closed connection in its own time.
    wait_until(10, 'QEMU sees one client', sub { $clients->() == 1 });
    is($clients->(), 1, 'one VNC client connected before');
    $console->disable;
    ok(!$console->{vnc}, 'disable drops the VNC object');
    ok(!$vnc->socket, 'the object has no socket any more');
    wait_until(10, 'QEMU sees the client leave', sub { $clients->() == 0 });
    is($clients->(), 0, 'the connection is closed on the server side');
};

done_testing;
