#!/usr/bin/perl
# Smoke test of the real-server test harness (t/lib/NativeVNC/Test): QEMU with the tiny Linux guest and TigerVNC's
# Xvnc start, answer, show what they should, and leave no process behind. Needs tools/install-deps and
# tools/build-guest.
use v5.36;
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::Guest;
use NativeVNC::Test::Xvnc;
use NativeVNC::Test::Image qw(rgb_at crop_rgb distinct_colours);
use NativeVNC::Test::Util qw(group_pids live_groups rfb_probe child_pids);

# Whole-test guard: exit (so END blocks reap the servers) instead of hanging.
$SIG{ALRM} = sub { diag 'test did not finish within 600s'; exit 1 };
alarm 600;

my %spawned;    # pid => what, to check afterwards that all are gone

sub gone_ok ($pid, $what) {
    ok(!kill(0, $pid), "$what process $pid is gone");
    is_deeply([group_pids($pid)], [], "$what process group $pid is empty");
}

subtest 'QEMU guest' => sub {
    my $started = time;
    my $guest = NativeVNC::Test::Guest->start;
    $spawned{ $guest->pid } = 'qemu';
    my @command = @{ $guest->command };
    ok((grep { $_ eq 'tcg' } @command) && !(grep { /kvm/ } @command), 'QEMU runs with -accel tcg, no KVM');

    my $boot = $guest->wait_ready;
    diag sprintf 'guest: QEMU start to ready marker %.1f s (TCG)', $boot;
    cmp_ok($boot, '<', 180, 'guest ready within 180 s');

    is($guest->run('echo hello'), 'hello', 'run returns the output of a command');
    my ($output, $status) = $guest->run_status('echo out; echo err >&2; exit 3');
    is($status, 3, 'run_status returns the exit status');
    is($output, "out\nerr", 'run_status returns stdout and stderr');
    ok(!eval { $guest->run('false'); 1 }, 'run dies on a non-zero exit');
    like($@, qr/exited with status 1/, '... saying so');
    is($guest->run(q{echo "it's"; printf 'no newline'}), "it's\nno newline", 'quotes survive, last line kept');
    my $uname = $guest->run('uname -sm');
    is($uname, 'Linux x86_64', 'guest is a Linux x86_64');

    my $screen = $guest->screendump;
    is("$screen->{width}x$screen->{height}", '1024x768', 'screendump is 1024x768');
    is(length $screen->{rgb}, 1024 * 768 * 3, 'screendump has 3 bytes per pixel');

    my $info = rfb_probe($guest->vnc_host, $guest->vnc_port);
    is("$info->{width}x$info->{height}", '1024x768', 'QEMU VNC server answers, 1024x768, no auth');
    is_deeply($info->{security_types}, [1], '... offering only security type None');

    $guest->run('cat /dev/urandom > /dev/fb0 2>/dev/null; true');
    my $first = $guest->screendump;
    sleep 1;
    my $second = $guest->screendump;
    ok($first->{rgb} eq $second->{rgb}, 'two successive screendumps are identical (static screen)');
    cmp_ok(distinct_colours($first), '>', 100_000, 'the noise screen has many colours');
    cmp_ok(distinct_colours($screen), '>', 1, 'the console screen is not one colour either');

    my $pid = $guest->pid;
    my $stop_started = time;
    $guest->stop;
    diag sprintf 'guest: stop took %.2f s, whole subtest %.1f s', time - $stop_started, time - $started;
    ok(!$guest->alive, 'stopped guest is not alive');
    gone_ok($pid, 'qemu');
};

subtest 'QEMU guest with a VNC password, killed' => sub {
    my $guest = NativeVNC::Test::Guest->start(password => 'pw4test');
    $spawned{ $guest->pid } = 'qemu';
    # Not waiting for the guest: the VNC server is up at once (showing the boot-time 640x480 or 720x400 mode).
    my $info = eval { rfb_probe($guest->vnc_host, $guest->vnc_port, password => 'pw4test') };
    ok($info && $info->{width} > 0, 'VNC authentication with the password works') or diag $@;
    diag "guest: VNC framebuffer right after start: $info->{width}x$info->{height}" if $info;
    ok(!eval { rfb_probe($guest->vnc_host, $guest->vnc_port, password => 'wrong') }, 'a wrong password fails');
    ok(!eval { rfb_probe($guest->vnc_host, $guest->vnc_port) }, 'security type None is not offered');
    my $pid = $guest->pid;
    $guest->kill;
    gone_ok($pid, 'killed qemu');
};

subtest 'Xvnc' => sub {
    my $started = time;
    my $xvnc = NativeVNC::Test::Xvnc->start;
    $spawned{ $xvnc->pid } = 'Xvnc';
    diag sprintf 'Xvnc: started on :%d, port %d, in %.2f s', $xvnc->display, $xvnc->port, time - $started;
    my $info = rfb_probe($xvnc->host, $xvnc->port);
    is("$info->{width}x$info->{height}", '1024x768', 'Xvnc answers RFB, 1024x768, no auth');

    my $t = time;
    my $scene = $xvnc->draw_scene(7);
    diag sprintf 'Xvnc: draw_scene %.2f s', time - $t;
    $t = time;
    my $image = $xvnc->root_image;
    diag sprintf 'Xvnc: root_image %.2f s', time - $t;
    is("$image->{width}x$image->{height}", '1024x768', 'root_image is 1024x768');
    is(length $image->{rgb}, 1024 * 768 * 3, 'root_image has 3 bytes per pixel');
    is(scalar @{ $scene->{solids} }, 4, 'the scene lists its solid rectangles');
    for my $rect (@{ $scene->{solids} }) {
        my ($cx, $cy) = ($rect->{x} + int($rect->{w} / 2), $rect->{y} + int($rect->{h} / 2));
        is_deeply([rgb_at($image, $cx, $cy)], $rect->{rgb}, "solid rectangle at $rect->{x},$rect->{y} has its colour");
        is_deeply([rgb_at($image, $rect->{x} + $rect->{w} - 1, $rect->{y} + $rect->{h} - 1)], $rect->{rgb},
            '... up to its bottom right pixel');
    }
    cmp_ok(distinct_colours($image), '>', 50_000, 'the scene has many colours (noise, gradient)');

    # A copy across regions, then one overlapping its own source.
    my @copies = ([560, 40, 200, 150, 40, 420], [300, 600, 120, 80, 310, 590]);
    for my $copy (@copies) {
        my ($sx, $sy, $w, $h, $dx, $dy) = @$copy;
        my $before = $xvnc->root_image;
        $xvnc->copy_area(@$copy);
        $xvnc->sync;
        my $after = $xvnc->root_image;
        ok(crop_rgb($after, $dx, $dy, $w, $h) eq crop_rgb($before, $sx, $sy, $w, $h),
            "copy_area moved $w x $h from $sx,$sy to $dx,$dy");
        ok(crop_rgb($after, 512, 0, 40, 40) eq crop_rgb($before, 512, 0, 40, 40), '... and left other pixels alone');
    }

    $xvnc->draw_scene(7);
    ok($xvnc->root_image->{rgb} eq $image->{rgb}, 'draw_scene is deterministic');
    $xvnc->draw_scene(8);
    ok($xvnc->root_image->{rgb} ne $image->{rgb}, 'another seed draws another scene');

    my $pid = $xvnc->pid;
    $xvnc->stop;
    gone_ok($pid, 'Xvnc');
};

subtest 'Xvnc with a VNC password' => sub {
    my $xvnc = NativeVNC::Test::Xvnc->start(password => 'secret');
    $spawned{ $xvnc->pid } = 'Xvnc';
    my $info = eval { rfb_probe($xvnc->host, $xvnc->port, password => 'secret') };
    is($info && $info->{width}, 1024, 'VNC authentication with the password file works') or diag $@;
    ok(!eval { rfb_probe($xvnc->host, $xvnc->port, password => 'wrong') }, 'a wrong password fails');
    my $pid = $xvnc->pid;
    undef $xvnc;
    gone_ok($pid, 'Xvnc (destroyed object)');
};

subtest 'nothing left behind' => sub {
    is_deeply([live_groups()], [], 'no spawned process group left unreaped');
    for my $pid (sort keys %spawned) {
        ok(!kill(0, $pid) && !group_pids($pid), "$spawned{$pid} $pid is gone");
    }
    is_deeply([child_pids()], [], 'the test process has no child processes');
};


alarm 0;
done_testing;
