#!/usr/bin/perl
# The client against a second real VNC server implementation: TigerVNC's Xvnc, drawn on with X11::Protocol
# (t/lib/NativeVNC/Test/Xvnc.pm). Every screen the client decodes is compared with the server's own truth
# (GetImage of the root window): pixel for pixel for the lossless encodings, within stated bounds for JPEG and
# for a 16-bit pixel format. Covers the low-level NativeVNC::Client, consoles::NativeVNC with NativeVNC::Image
# and (in a separate process with os-autoinst loaded) with tinycv, VNC authentication and the Cursor
# pseudo-encoding. Needs Xvnc, X11::Protocol, Crypt::DES and os-autoinst: nothing is skipped.
use v5.36;
use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use IPC::Open2 qw(open2);
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC;
use NativeVNC::Exception;
use consoles::NativeVNC;
use NativeVNC::Test::Xvnc;
use NativeVNC::Test::Cli qw(run_nativevnc);
use NativeVNC::Test::Image qw(read_ppm parse_ppm rgb_at differing_pixels channel_errors rng);
use NativeVNC::Test::Util qw(group_pids live_groups reap child_pids slurp_or_die);

# No whole-test alarm: NativeVNC::Test::Util::with_timeout, which guards every X request, re-arms an outer
# alarm one second short each time, so a draw_scene would use it up. Every wait here is bounded instead.
my $test_started = time;

use constant {
    RAW => 0, COPYRECT => 1, RRE => 2, HEXTILE => 5, TIGHT => 7, ZRLE => 16,
    JPEG_QUALITY_9 => -23, DESKTOP_SIZE => -223, LAST_RECT => -224, CURSOR => -239, EXTENDED_DESKTOP_SIZE => -308,
};
use constant UPDATE_TIMEOUT => 5;    # seconds for any one screen update (Xvnc needs milliseconds)

my $PASSWORD = 'sekr1t';
my $WRONG_PASSWORD = 'wr0ngpw';

my $tmp = tempdir('nativevnc-12-xvnc-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{NATIVEVNC_KEEP_TMP});
my %spawned;    # pid => what, to check at the end that all are gone

# --- screens as {width, height, rgb} (packed R,G,B, row-major, as root_image returns them) ---------------

my $snapshots = 0;

# The pixels of a NativeVNC::Image (through its documented PPM output) or of a tinycv::Image (ppm_data).
sub image_rgb ($image) {
    return parse_ppm($image->ppm_data, 'tinycv ppm_data') if $image->isa('tinycv::Image');
    my $path = sprintf '%s/snapshot-%03d.ppm', $tmp, ++$snapshots;
    $image->write($path);
    return read_ppm($path);
}

# Sample positions: the corners and a scattered set in between.
sub sample_positions ($w, $h) {
    my @positions = ([0, 0], [$w - 1, 0], [0, $h - 1], [$w - 1, $h - 1]);
    push @positions, [($_ * 7919) % $w, ($_ * 104729) % $h] for 1 .. 400;
    return @positions;
}

# get_pixel must agree with the PPM the comparisons use, so that those really test the image object.
sub get_pixel_agrees ($image, $rgb, $what) {
    my @bad;
    for my $p (sample_positions($rgb->{width}, $rgb->{height})) {
        my @bgr = $image->get_pixel(@$p);
        my @want = reverse rgb_at($rgb, @$p);
        push @bad, "@$p: (@bgr) vs (@want)" if "@bgr" ne "@want";
    }
    ok(!@bad, "$what: get_pixel returns (b, g, r) as in the image's pixels")
      or diag join "\n", 'get_pixel vs. pixels:', @bad[0 .. ($#bad < 4 ? $#bad : 4)];
}

sub screen_is ($got, $want, $what) {
    my ($count, $first) = differing_pixels($got, $want, 5);
    return pass("$what: pixel-exact") unless $count;
    fail("$what: pixel-exact");
    diag "$count differing pixels; the first: ", join('; ', @$first);
    return 0;
}

# --- the low-level client --------------------------------------------------------------------------------

sub counts_text ($counts) {
    return join ', ', map { "$_ => $counts->{$_}" } sort { $a <=> $b } keys %$counts;
}

sub connect_client ($xvnc, %options) {
    my $client = NativeVNC::Client->new;
    $client->connect({ host => $xvnc->host, port => $xvnc->port, connect_timeout => 10, io_timeout => 10,
        %options });
    return $client;
}

# Requests an update (full or incremental), waits for it; a pass or fail either way, true on success.
sub update_ok ($client, $incremental, $what) {
    $client->request_update($incremental ? 1 : 0);
    my $started = time;
    return 1 if ok($client->wait_update(UPDATE_TIMEOUT),
        "$what: " . ($incremental ? 'incremental' : 'full') . ' update within ' . UPDATE_TIMEOUT . ' s');
    my ($updates, $messages) = eval { $client->poll };
    diag sprintf 'waited %.2f s; since the previous poll: %s updates, %s messages%s; rectangles: %s', time - $started,
      $updates // '?', $messages // '?', ($@ ? ", connection error: $@" : ''), counts_text($client->encoding_counts);
    diag "log: $_->[1]" for $client->take_log;
    return 0;
}

# The area of the rectangles take_damage reports (the damage since its previous call).
sub damage_area ($client) {
    my $area = 0;
    for my $rect ($client->take_damage) {
        my ($x, $y, $w, $h, $pixels) = @$rect;
        die "damage rectangle ${w}x$h at $x,$y has " . length($pixels) . " bytes\n"
          unless length $pixels == $w * $h * 4;
        $area += $w * $h;
    }
    return $area;
}

# --- changes to the screen between updates ---------------------------------------------------------------

# Copies (one across regions, one overlapping its source), solid fills down to single pixels, noise and a
# patch in the bottom right corner, different for each $round.
sub change_screen ($xvnc, $round) {
    my $rng = rng($round);
    $xvnc->copy_area(512 + 16 * $round, 8 * $round, 200, 150, 40 + 8 * $round, 400 + 4 * $round);
    $xvnc->copy_area(300 + $round, 600, 120, 80, 310 + $round, 590);
    $xvnc->fill_rect(700 - 30 * $round, 300, 90, 50, [map { $rng->(256) } 1 .. 3]);
    $xvnc->fill_rect(3 + 7 * $round, 5, 1, 1, [map { $rng->(256) } 1 .. 3]);
    $xvnc->fill_rect(1000, 100 + 13 * $round, 24, 1, [map { $rng->(256) } 1 .. 3]);
    $xvnc->put_rgb(600, 500 + 20 * $round, 97, 61, pack 'C*', map { $rng->(256) } 1 .. 97 * 61 * 3);
    $xvnc->put_rgb(1019, 765, 5, 3, pack 'C*', map { $rng->(256) } 1 .. 5 * 3 * 3);
    $xvnc->sync;
}

# --- the servers -------------------------------------------------------------------------------------------

my $xvnc = NativeVNC::Test::Xvnc->start;
$spawned{ $xvnc->pid } = 'Xvnc';
my ($W, $H) = ($xvnc->width, $xvnc->height);
is("${W}x$H", '1024x768', 'Xvnc runs at 1024x768');
my $screen_area = $W * $H;
my %case_counts;    # forced encoding case => its latest encoding_counts

# Each forced encoding, a full frame and two incremental updates, pixel-exact.
my @forced = (
    # name, encodings offered before DesktopSize and LastRect, the encoding under test, and the encodings that
    # may carry pixels (Raw is always allowed by the protocol)
    [Raw => [RAW], RAW, [RAW]],
    [CopyRect => [COPYRECT, RAW], COPYRECT, [COPYRECT, RAW]],
    [RRE => [RRE], RRE, [RRE, RAW]],
    [Hextile => [HEXTILE], HEXTILE, [HEXTILE]],
    [ZRLE => [ZRLE], ZRLE, [ZRLE]],
    [Tight => [TIGHT], TIGHT, [TIGHT]],
);
my $seed = 100;
for my $case (@forced) {
    my ($name, $offer, $encoding, $carriers) = @$case;
    subtest "forced encoding $name" => sub {
        my $started = time;
        $xvnc->draw_scene(++$seed);
        my $truth = $xvnc->root_image;
        my $client = connect_client($xvnc, encodings => [@$offer, DESKTOP_SIZE, LAST_RECT]);
        is_deeply([@{ $client->status }{qw(width height)}], [$W, $H], 'connected, status has the screen size');

        update_ok($client, 0, $name) or return;
        my $first = $case_counts{$name} = $client->encoding_counts;
        my $snapshot = $client->snapshot;
        my $got = image_rgb($snapshot);
        screen_is($got, $truth, "$name full frame");
        get_pixel_agrees($snapshot, $got, "$name snapshot");
        is(damage_area($client), $screen_area, 'take_damage reports the whole screen after the full update');
        diag "$name: full frame: " . counts_text($first);
        cmp_ok($first->{$encoding} // 0, '>', 0, "the full frame used $name ($encoding)")
          unless $encoding == COPYRECT;    # nothing to copy in a first frame
        cmp_ok($first->{+LAST_RECT} // 0, '>=', 1, 'Xvnc ended the update with LastRect');

        for my $round (1, 2) {
            change_screen($xvnc, $round);
            $truth = $xvnc->root_image;
            update_ok($client, 1, "$name round $round") or return;
            $case_counts{$name} = $client->encoding_counts;
            screen_is(image_rgb($client->snapshot), $truth, "$name after incremental update $round");
            my $area = damage_area($client);
            ok($area > 0 && $area < $screen_area / 2,
                "round $round: the incremental update covered only part of the screen ($area pixels)");
        }

        my $counts = $client->encoding_counts;
        diag "$name: after two incremental updates: " . counts_text($counts);
        cmp_ok($counts->{$encoding} // 0, '>', 0, "Xvnc sent rectangles in $name ($encoding)");
        my %allowed = map { $_ => 1 } @$carriers, DESKTOP_SIZE, LAST_RECT;
        my @others = grep { !$allowed{$_} } sort keys %$counts;
        ok(!@others, "no rectangles in encodings other than @$carriers and the pseudo-encodings")
          or diag "unexpected encodings: @others";
        cmp_ok($counts->{+LAST_RECT} // 0, '>=', 3, 'each of the three updates ended with LastRect');
        $client->disconnect;
        ok(!$client->status->{connected}, 'disconnected');
        diag sprintf '%s: %.2f s', $name, time - $started;
    };
}

subtest 'every encoding under test was seen' => sub {
    my %seen;
    for my $counts (values %case_counts) {
        $seen{$_} += $counts->{$_} for keys %$counts;
    }
    diag 'all forced-encoding connections: ' . counts_text(\%seen);
    for my $case (@forced) {
        my ($name, undef, $encoding) = @$case;
        cmp_ok($seen{$encoding} // 0, '>', 0, "$name ($encoding) rectangles were received");
    }
};

# The documented pattern request_update + wait_update must not depend on wait_update being called before the
# update arrives: on a busy machine the update can arrive before the caller gets to wait_update. Its pixels
# then wait in the socket (the update has started: its message is counted) until wait_update draws them.
subtest 'wait_update sees an update that arrived before it was called' => sub {
    $xvnc->draw_scene(150);
    my $client = connect_client($xvnc, encodings => [ZRLE, DESKTOP_SIZE, LAST_RECT]);
    update_ok($client, 0, 'ZRLE') or return;
    # The answer to the full request can be more than one update: those wait to be drawn too, with only 16 KiB
    # read ahead, which could keep the incremental update below in the socket. Draw them first.
    my $deadline = time + UPDATE_TIMEOUT;
    $client->update(2) while ($client->poll)[2] && time < $deadline;
    $xvnc->fill_rect(100, 100, 20, 20, [1, 2, 3]);
    $xvnc->sync;
    my $truth = $xvnc->root_image;
    $client->request_update(1);
    $deadline = time + UPDATE_TIMEOUT;
    my $messages = $client->counters->{messages};
    my $last_rects = $client->encoding_counts->{+LAST_RECT};
    sleep 0.01 until $client->counters->{messages} > $messages || time > $deadline;
    is($client->counters->{messages}, $messages + 1, 'the incremental update has arrived');
    is($client->encoding_counts->{+LAST_RECT}, $last_rects, '... and waits to be drawn (its LastRect is not read yet)');
    ok($client->wait_update(2), 'wait_update, called afterwards, reports it');
    is($client->encoding_counts->{+LAST_RECT}, $last_rects + 1, '... whole');
    screen_is(image_rgb($client->snapshot), $truth, 'and the snapshot has it');
    $client->disconnect;
};

# TigerVNC answers a full update request of a client that takes ExtendedDesktopSize (the default encodings
# do) with the screen's size alone; the pixels come for the next request. The program must ask again.
subtest 'nativevnc screenshot with the default encodings' => sub {
    $xvnc->draw_scene(160);
    my $truth = $xvnc->root_image;
    my ($status, undef, $err) = run_nativevnc({ timeout => 30 }, 'screenshot', '--url',
        'vnc://' . $xvnc->host . ':' . $xvnc->port, '--timeout', 10, '--out', "$tmp/cli.ppm");
    is($status, 0, 'nativevnc screenshot succeeds') or diag $err;
    screen_is(read_ppm("$tmp/cli.ppm"), $truth, 'the screenshot') if $status == 0;
};

# Tight with JPEG.
subtest 'Tight with JPEG quality 9' => sub {
    my $scene = $xvnc->draw_scene(201);
    my $truth = $xvnc->root_image;
    my $client = connect_client($xvnc, encodings => [TIGHT, JPEG_QUALITY_9, DESKTOP_SIZE, LAST_RECT]);
    update_ok($client, 0, 'Tight/JPEG') or return;
    my $got = image_rgb($client->snapshot);
    my $counts = $client->encoding_counts;
    diag 'Tight/JPEG: ' . counts_text($counts);
    cmp_ok($counts->{+TIGHT} // 0, '>', 0, 'Xvnc sent Tight rectangles');

    my $all = channel_errors($got, $truth);
    diag sprintf 'Tight/JPEG whole screen: %d differing pixels, mean channel error %.3f, max %d',
      @$all{qw(differing mean max)};
    # Everything Tight does besides JPEG is lossless: differences prove that JPEG was used.
    cmp_ok($all->{differing}, '>', 0, 'some pixels differ: JPEG (lossy) was used');
    # At quality 9 (JPEG quality 100 in TigerVNC) errors come from the colour conversion and rounding
    # only: a mean of 3 (about 1 %) leaves a wide margin and still catches any decoding error.
    cmp_ok($all->{mean}, '<', 3, 'mean absolute channel error over the screen < 3 (of 255)');
    # A block decoded wrongly (wrong table, wrong colour conversion, misplaced) is off by far more than that.
    cmp_ok($all->{max}, '<=', 24, 'no channel anywhere off by more than 24');
    for my $region (qw(noise gradient)) {
        my $e = channel_errors($got, $truth, rect => $scene->{regions}{$region});
        diag sprintf 'Tight/JPEG %s region: mean %.3f, max %d', $region, @$e{qw(mean max)};
        cmp_ok($e->{mean}, '<', 3, "$region region: mean channel error < 3");
    }
    # Areas of few colours go through Tight's lossless fill and palette paths, never JPEG.
    for my $region (qw(solids small)) {
        my $e = channel_errors($got, $truth, rect => $scene->{regions}{$region});
        is($e->{max}, 0, "$region region (few colours): exact") or diag "max error $e->{max} in $e->{differing} pixels";
    }
    $client->disconnect;
};

# A 16-bit pixel format (RGB555, as os-autoinst asks for with depth 16).
subtest 'depth 16 (RGB555)' => sub {
    my $rng = rng(16);
    my $up = sub ($c5) { int(($c5 * 255 + 15) / 31) };    # the 5-bit value the client shows, in 0..255
    my %representable = map { $up->($_) => 1 } 0 .. 31;
    my $allowed_bytes = join '', map { sprintf '\\x%02x', $_ } sort { $a <=> $b } keys %representable;
    for my $case ([ZRLE => ZRLE], [Hextile => HEXTILE], [Tight => TIGHT], [Raw => RAW]) {
        my ($name, $encoding) = @$case;
        $xvnc->draw_scene(300 + $encoding);
        # Patches of colours that 5 bits per channel represent exactly, over the lines region.
        for my $i (0 .. 31) {
            $xvnc->fill_rect(256 + ($i % 8) * 32, 384 + int($i / 8) * 32, 32, 32,
                [map { $up->($rng->(32)) } 1 .. 3]);
        }
        $xvnc->sync;
        my $truth = $xvnc->root_image;
        my $client = connect_client($xvnc, encodings => [$encoding, DESKTOP_SIZE, LAST_RECT], depth => 16);
        update_ok($client, 0, "depth 16 $name") or next;
        my $counts = $client->encoding_counts;
        cmp_ok($counts->{$encoding} // 0, '>', 0, "depth 16 $name: Xvnc sent $name rectangles")
          or diag counts_text($counts);
        my $got = image_rgb($client->snapshot);
        is("$got->{width}x$got->{height}", "${W}x$H", "depth 16 $name: screen size");

        # Every channel went through 5 bits: only the 32 values 5 bits scale to occur.
        my $stray = $got->{rgb} =~ /([^$allowed_bytes])/ ? ord $1 : undef;
        ok(!defined $stray, "depth 16 $name: every channel value is a scaled 5-bit value")
          or diag "found channel value $stray";

        my ($max, $over, $inexact, $first_over, $first_inexact) = (0, 0, 0);
        my @t = unpack 'C*', $truth->{rgb};
        my @g = unpack 'C*', $got->{rgb};
        for (my $i = 0; $i < @t; $i += 3) {
            my @d = map { abs($g[$i + $_] - $t[$i + $_]) } 0 .. 2;
            for (@d) { $max = $_ if $_ > $max }
            if ($d[0] > 8 || $d[1] > 8 || $d[2] > 8) {
                $over++;
                $first_over //= sprintf '(%d,%d): got %s, want %s', ($i / 3) % $W, int($i / 3 / $W),
                  join(',', @g[$i .. $i + 2]), join(',', @t[$i .. $i + 2]);
            }
            if (($d[0] || $d[1] || $d[2]) && $representable{ $t[$i] } && $representable{ $t[$i + 1] }
                && $representable{ $t[$i + 2] }) {
                $inexact++;
                $first_inexact //= sprintf '(%d,%d): got %s, want %s', ($i / 3) % $W, int($i / 3 / $W),
                  join(',', @g[$i .. $i + 2]), join(',', @t[$i .. $i + 2]);
            }
        }
        diag "depth 16 $name: maximum channel error $max; " . counts_text($counts);
        is($over, 0, "depth 16 $name: every channel within 8 of the truth") or diag "first: $first_over";
        is($inexact, 0, "depth 16 $name: colours representable in 5 bits per channel are exact")
          or diag "$inexact pixels, first: $first_inexact";
        my $patch = channel_errors($got, $truth, rect => [256, 384, 256, 128]);
        is($patch->{max}, 0, "depth 16 $name: the 5-bit colour patches are exact");
        cmp_ok(channel_errors($got, $truth)->{differing}, '>', 0,
            "depth 16 $name: other colours differ (the server really sent 16-bit pixels)");
        $client->disconnect;
    }
};

# The Cursor pseudo-encoding with Xvnc started with -nocursor.
subtest 'Cursor pseudo-encoding' => sub {
    ok((grep { $_ eq '-nocursor' } @{ $xvnc->command }), 'the harness starts Xvnc with -nocursor');
    my $scene = $xvnc->draw_scene(401);
    my $truth = $xvnc->root_image;
    my $client = connect_client($xvnc, encodings => [CURSOR, ZRLE, DESKTOP_SIZE, LAST_RECT]);
    # The pointer over a solid rectangle: a painted cursor would show there.
    my $solid = $scene->{solids}[0];
    $client->pointer(0, $solid->{x} + 20, $solid->{y} + 20);
    update_ok($client, 0, 'Cursor') or return;
    my $counts = $client->encoding_counts;
    diag 'Cursor offered: ' . counts_text($counts);
    # Evidence (TigerVNC 1.12): Xvnc sends a Cursor rectangle when -239 is offered, -nocursor or not.
    cmp_ok($counts->{+CURSOR} // 0, '>=', 1, 'Xvnc sent a Cursor pseudo-rectangle, and it was counted');
    cmp_ok($counts->{+ZRLE} // 0, '>', 0, '... next to ZRLE rectangles');
    screen_is(image_rgb($client->snapshot), $truth, 'the screen with a Cursor shape taken by the client');
    change_screen($xvnc, 3);
    $truth = $xvnc->root_image;
    update_ok($client, 1, 'Cursor') or return;
    screen_is(image_rgb($client->snapshot), $truth, '... and after an incremental update');
    $client->disconnect;
};

# consoles::NativeVNC with NativeVNC::Image.

# Rectangles received in pixel encodings (not pseudo-encodings) on the connection.
sub pixel_rects ($counts) {
    my $n = 0;
    $n += $counts->{$_} for grep { $_ >= 0 } keys %$counts;
    return $n;
}

# What os-autoinst's capture loop does: send_update_request, then update_framebuffer until it reports an update;
# repeated until an update brought pixel rectangles. (TigerVNC answers a non-incremental request with an update
# of pseudo-rectangles only, ExtendedDesktopSize and the like, and sends the pixels after the next request.)
# True if pixels came within the timeout.
sub console_frame ($vnc) {
    my $deadline = time + UPDATE_TIMEOUT;
    my $before = pixel_rects($vnc->encoding_counts);
    while (time < $deadline) {
        $vnc->send_update_request;
        until ($vnc->update_framebuffer) {
            return 0 if time > $deadline;
            sleep 0.01;
        }
        return 1 if pixel_rects($vnc->encoding_counts) > $before;
    }
    return 0;
}

subtest 'consoles::NativeVNC with NativeVNC::Image' => sub {
    local $consoles::NativeVNC::USE_TINYCV = 0;
    $xvnc->draw_scene(501);
    my $truth = $xvnc->root_image;
    my $vnc = consoles::NativeVNC->new({ hostname => $xvnc->host, port => $xvnc->port, description => 'Xvnc' });
    ok(eval { $vnc->login; 1 }, 'login') or return diag "login failed: $@";
    is($vnc->width . 'x' . $vnc->height, "${W}x$H", 'login sets width and height');
    # The stall detection would add a forced 16x16 update if the drawing took longer than 2 s.
    $vnc->check_vnc_stalls(0);
    ok(console_frame($vnc), 'send_update_request + update_framebuffer: pixels within ' . UPDATE_TIMEOUT . ' s')
      or return;
    my $fb = $vnc->_framebuffer;
    isa_ok($fb, 'NativeVNC::Image', '_framebuffer');
    my $got = image_rgb($fb);
    screen_is($got, $truth, 'consoles::NativeVNC framebuffer');
    get_pixel_agrees($fb, $got, '_framebuffer');
    for my $round (4, 5) {
        change_screen($xvnc, $round);
        $truth = $xvnc->root_image;
        ok(console_frame($vnc), "round $round: incremental update collected") or return;
        is($vnc->_framebuffer, $fb, '... into the same image object');
        screen_is(image_rgb($fb), $truth, "consoles::NativeVNC framebuffer after change round $round");
    }
    my $counts = $vnc->encoding_counts;
    diag 'consoles::NativeVNC default encodings: ' . counts_text($counts);
    ok((grep { $_ >= 0 && $counts->{$_} } keys %$counts), 'encoding_counts shows the pixel encodings used');
    cmp_ok($counts->{+EXTENDED_DESKTOP_SIZE} // 0, '>=', 1,
        'Xvnc sent ExtendedDesktopSize (-308), which the defaults offer');

    # os-autoinst's stall detection sends a forced 16x16 non-incremental request. TigerVNC answers every
    # non-incremental request with an ExtendedDesktopSize rectangle of the unchanged size (then, after the
    # next request, the pixels of the 16x16 area only): the rest of the screen must stay as it is.
    $vnc->send_forced_update_request;
    ok(console_frame($vnc), 'after send_forced_update_request: pixels within ' . UPDATE_TIMEOUT . ' s');
    screen_is(image_rgb($vnc->_framebuffer), $truth,
        'consoles::NativeVNC framebuffer after a forced update request (ExtendedDesktopSize, same size)');
    $vnc->socket(undef);
    ok(!$vnc->{_client}->status->{connected}, 'socket(undef) disconnects');
};

# VNC authentication.
my $xvnc_pw = NativeVNC::Test::Xvnc->start(password => $PASSWORD);
$spawned{ $xvnc_pw->pid } = 'Xvnc with password';

# Runs $code with warnings and STDERR captured (consoles::NativeVNC's diagnostics on, so that they are
# captured too); returns the text of both.
sub captured ($code) {
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, join '', @_ };
    local $ENV{NATIVEVNC_DEBUG} = 1;
    my $err_file = "$tmp/stderr-" . ++$snapshots . '.txt';
    open my $saved, '>&', \*STDERR or die "dup STDERR: $!";
    open STDERR, '>', $err_file or die "$err_file: $!";
    my $ok = eval { $code->(); 1 };
    my $error = $@;
    open STDERR, '>&', $saved or die "restore STDERR: $!";
    die $error unless $ok;
    return join('', @warnings) . slurp_or_die($err_file);
}

subtest 'VNC authentication' => sub {
    ok(!$INC{'OpenQA/Exceptions.pm'}, 'os-autoinst is not loaded in this process');
    my $host = $xvnc_pw->host;
    my $port = $xvnc_pw->port;

    my $right = consoles::NativeVNC->new({ hostname => $host, port => $port, password => $PASSWORD });
    my $output = captured(sub { $right->login(5) });
    is($right->width . 'x' . $right->height, "${W}x$H", 'the right password logs in');
    unlike($output, qr/\Q$PASSWORD\E/, '... and nothing it printed or warned contains the password');
    $right->socket(undef);

    my ($e, $log);
    my $wrong = consoles::NativeVNC->new({ hostname => $host, port => $port, password => $WRONG_PASSWORD });
    my $started = time;
    $output = captured(sub { $e = eval { $wrong->login(5); 1 } ? undef : $@ });
    $log = join "\n", map { $_->[1] } $wrong->{_client}->take_log;
    ok($e, 'a wrong password: login dies') or return;
    cmp_ok(time - $started, '<', 4, '... at once, without retrying until the connect timeout');
    is(ref $e, 'NativeVNC::Exception::VNCSetupError', '... with NativeVNC::Exception::VNCSetupError');
    my $message = ref $e && $e->can('error') ? $e->error : "$e";
    like($message, qr/authentication/i, '... whose error mentions authentication');
    diag "wrong password: $message";
    for my $text ([error => $message], [output => $output], [log => $log]) {
        unlike($text->[1], qr/\Q$WRONG_PASSWORD\E/, "... the $text->[0] does not contain the wrong password");
        unlike($text->[1], qr/\Q$PASSWORD\E/, "... the $text->[0] does not contain the right password");
    }

    my $low = NativeVNC::Client->new;
    ok(!eval { $low->connect({ host => $host, port => $port, password => $WRONG_PASSWORD }); 1 },
        'NativeVNC::Client: a wrong password fails');
    is(ref $@ && $@->kind, 'auth', '... with an error of kind auth');

    my $none = consoles::NativeVNC->new({ hostname => $host, port => $port });
    $e = eval { $none->login(5); 1 } ? undef : $@;
    ok($e, 'no password: login dies') or return;
    is(ref $e, 'NativeVNC::Exception::VNCSetupError', '... with NativeVNC::Exception::VNCSetupError');
    $message = ref $e && $e->can('error') ? $e->error : "$e";
    like($message, qr/requires a password|password (?:is )?required/i, '... saying that a password is required');
    diag "no password: $message";
};

# consoles::NativeVNC with tinycv, and os-autoinst's exceptions: a separate perl with os-autoinst loaded,
# driven step by step over a pipe while this process draws.
my $CHILD = <<'CHILD';
use v5.36;
my ($tmp, $host, $port, $pw_host, $pw_port, $password, $wrong) = @ARGV;
BEGIN { open STDERR, '>', "$ARGV[0]/child-stderr.txt" or die "child stderr: $!" }
use lib '/usr/lib/os-autoinst';
use bmwqemu;
use cv;
use JSON::PP qw(encode_json);
use POSIX ();
use Time::HiRes qw(time sleep);
cv::init();
require tinycv;
require consoles::NativeVNC;
STDOUT->autoflush(1);
$SIG{ALRM} = sub { print encode_json({ step => 'error', error => 'child timed out' }), "\n"; POSIX::_exit(3) };
alarm 60;
my @warnings;
$SIG{__WARN__} = sub { push @warnings, join '', @_ };

sub pixel_rects ($counts) {
    my $n = 0;
    $n += $counts->{$_} for grep { $_ >= 0 } keys %$counts;
    return $n;
}

# As console_frame in the test: os-autoinst's request and collect, until pixels came.
sub frame ($vnc) {
    my $deadline = time + 10;
    my $before = pixel_rects($vnc->encoding_counts);
    while (1) {
        $vnc->send_update_request;
        until ($vnc->update_framebuffer) {
            die "no framebuffer update with pixels within 10 s\n" if time > $deadline;
            sleep 0.01;
        }
        return if pixel_rects($vnc->encoding_counts) > $before;
    }
}

sub report_frame ($vnc, $step) {
    my $fb = $vnc->_framebuffer;
    my $file = "$tmp/child-$step.ppm";
    open my $fh, '>:raw', $file or die "$file: $!";
    print {$fh} $fb->ppm_data;
    close $fh or die "$file: $!";
    my @samples = map { [@$_, $fb->get_pixel(@$_)] }
      ([0, 0], [$fb->xres - 1, $fb->yres - 1], map { [($_ * 7919) % $fb->xres, ($_ * 104729) % $fb->yres] } 1 .. 200);
    print encode_json({ step => $step, class => ref $fb, ppm => $file, samples => \@samples,
        counts => $vnc->encoding_counts }), "\n";
}

sub error_of ($code) {
    my $e = eval { $code->(); 1 } ? undef : $@;
    return undef unless defined $e;
    return { class => ref $e, error => (ref $e && $e->can('error') ? $e->error : "$e"),
        isa_openqa => (ref $e && $e->isa('OpenQA::Exception::VNCSetupError') ? 1 : 0) };
}

my $ok = eval {
    my $vnc = consoles::NativeVNC->new({ hostname => $host, port => $port, description => 'Xvnc' });
    $vnc->login;
    $vnc->check_vnc_stalls(0);
    frame($vnc);
    report_frame($vnc, 'full');
    for my $round (1, 2) {
        my $go = <STDIN> // die "parent went away\n";
        frame($vnc);
        report_frame($vnc, "round$round");
    }
    $vnc->socket(undef);
    <STDIN> // die "parent went away\n";
    my $right = consoles::NativeVNC->new({ hostname => $pw_host, port => $pw_port, password => $password });
    my $right_error = error_of(sub { $right->login(5) });
    my %auth = (right => { error => $right_error, size => $right->width . 'x' . $right->height });
    $right->socket(undef);
    $auth{wrong} = error_of(sub {
        consoles::NativeVNC->new({ hostname => $pw_host, port => $pw_port, password => $wrong })->login(5) });
    $auth{none} = error_of(sub { consoles::NativeVNC->new({ hostname => $pw_host, port => $pw_port })->login(5) });
    print encode_json({ step => 'auth', %auth, warnings => \@warnings,
        openqa_exceptions_loaded => ($INC{'OpenQA/Exceptions.pm'} ? 1 : 0) }), "\n";
    1;
};
print encode_json({ step => 'error', error => "$@" }), "\n" unless $ok;
exit($ok ? 0 : 1);
CHILD

subtest 'os-autoinst loaded: consoles::NativeVNC with tinycv, OpenQA exceptions' => sub {
    $xvnc->draw_scene(601);    # before the child connects
    my $truth = $xvnc->root_image;
    my @command = ($^X, (map { "-I$_" } grep { !ref } @INC), '-e', $CHILD,
        $tmp, $xvnc->host, $xvnc->port, $xvnc_pw->host, $xvnc_pw->port, $PASSWORD, $WRONG_PASSWORD);
    my $pid = open2(my $from_child, my $to_child, @command);
    $spawned{$pid} = 'perl with os-autoinst';
    $to_child->autoflush(1);
    my $buffer = '';
    my $select = IO::Select->new($from_child);
    my $next = sub {    # the child's next JSON line, or undef after 30 s or at its end
        my $deadline = time + 30;
        my $line;
        until (defined $line) {
            if ($buffer =~ s/\A([^\n]*)\n//) {
                $line = $1;
                last;
            }
            my $left = $deadline - time;
            return undef if $left <= 0 || !$select->can_read($left);
            sysread($from_child, $buffer, 65536, length $buffer) or return undef;
        }
        my $message = eval { decode_json($line) };
        unless (ref $message eq 'HASH') {
            fail('the child writes JSON lines');
            diag "child wrote: $line";
            return undef;
        }
        diag "child: $message->{error}" if ($message->{step} // '') eq 'error';
        return $message;
    };

    my $check_frame = sub ($message, $step, $truth) {
        is($message && $message->{step}, $step, "child reported step $step") or return;
        is($message->{class}, 'tinycv::Image', "$step: _framebuffer is a tinycv::Image");
        my $got = read_ppm($message->{ppm});
        screen_is($got, $truth, "tinycv framebuffer, $step");
        my @bad = grep { "@$_[2 .. 4]" ne join ' ', reverse rgb_at($got, @$_[0, 1]) } @{ $message->{samples} };
        ok(!@bad, "$step: tinycv's get_pixel returns (b, g, r) of the same pixels")
          or diag 'first: ' . join ' ', @{ $bad[0] };
        return 1;
    };

    my $message = $next->();
    if ($check_frame->($message, 'full', $truth)) {
        diag 'tinycv: ' . counts_text($message->{counts});
        for my $round (1, 2) {
            change_screen($xvnc, 5 + $round);
            $truth = $xvnc->root_image;
            print {$to_child} "next\n";
            $check_frame->($next->(), "round$round", $truth) or last;
        }
        print {$to_child} "auth\n";
        $message = $next->();
        if (is($message && $message->{step}, 'auth', 'child reported the authentication results')) {
            ok(!$message->{right}{error}, 'os-autoinst loaded: the right password logs in')
              or diag explain $message->{right}{error};
            is($message->{right}{size}, "${W}x$H", '... with the screen size');
            my $wrong = $message->{wrong} // {};
            is($wrong->{class}, 'OpenQA::Exception::VNCSetupError',
                'a wrong password: OpenQA::Exception::VNCSetupError');
            ok($message->{openqa_exceptions_loaded} && $wrong->{isa_openqa}, '... os-autoinst\'s own class');
            like($wrong->{error} // '', qr/authentication/i, '... whose error mentions authentication');
            unlike($wrong->{error} // '', qr/\Q$WRONG_PASSWORD\E|\Q$PASSWORD\E/, '... and contains no password');
            my $none = $message->{none} // {};
            is($none->{class}, 'OpenQA::Exception::VNCSetupError', 'no password: OpenQA::Exception::VNCSetupError');
            like($none->{error} // '', qr/requires a password|password (?:is )?required/i,
                '... saying that a password is required');
            unlike(join('', @{ $message->{warnings} }), qr/\Q$WRONG_PASSWORD\E|\Q$PASSWORD\E/,
                'nothing the child warned contains a password');
        }
    }
    close $to_child;
    my $status = reap($pid, 15);
    unless (defined $status) {
        kill 'KILL', $pid;
        $status = reap($pid, 5);
    }
    is($status, 0, 'the child exited with status 0');
    my $stderr = -e "$tmp/child-stderr.txt" ? slurp_or_die("$tmp/child-stderr.txt") : '';
    unlike($stderr, qr/\Q$WRONG_PASSWORD\E|\Q$PASSWORD\E/, 'nothing the child printed on STDERR contains a password');
    diag "child STDERR:\n$stderr" if $status;
};

# Cleanup.
subtest 'nothing left behind' => sub {
    for my $server ($xvnc, $xvnc_pw) {
        my $pid = $server->pid;
        $server->stop;
        ok(!kill(0, $pid), "Xvnc $pid is gone");
        is_deeply([group_pids($pid)], [], "Xvnc process group $pid is empty");
    }
    is_deeply([live_groups()], [], 'no spawned process group left unreaped');
    for my $pid (sort keys %spawned) {
        ok(!kill(0, $pid) && !group_pids($pid), "$spawned{$pid} $pid is gone");
    }
    is_deeply([child_pids()], [], 'the test process has no child processes');
};


diag sprintf 'whole test: %.1f s', time - $test_started;
done_testing;
