#!/usr/bin/perl
# NativeVNC::Client against QEMU's own view of its screen (QMP screendump), pixel for pixel, for every lossless
# encoding QEMU offers (Raw, Hextile, Zlib, ZRLE, Tight, TightPNG), full and incremental updates, and for Tight
# and TightPNG with JPEG quality level 9 within a bounded error. Boots the tiny Linux guest of tools/build-guest
# once, with `-vnc ...,lossy=on`, and paints a test screen into its framebuffer (24 or 32 bits per pixel).
#
# How QEMU (ui/vnc.c, ui/vnc-enc-tight.c) decides on JPEG, which the JPEG part relies on:
#  * The quality pseudo-encoding only counts with lossy=on; without one, Tight and TightPNG stay lossless.
#  * JPEG depends on how often an area changes: QEMU keeps, per 64x64 cell of the screen, the times of the
#    last 10 refreshes in which the guest had changed it, and every 0.5 s computes the cell's frequency,
#    10 / (newest - oldest). It refreshes every 30 ms at best, and waits 50 ms longer after each refresh
#    without a change or without an update request of a client to answer. A Tight sub-rectangle's frequency
#    is the mean over the cells its bounds touch, bounds included (one more cell row below, one more column
#    to the right). At quality level 9 a sub-rectangle below 0.5 updates/s never gets JPEG, one at 16/s or
#    more always does ("forced", and remembered as lossy), anything between does not either (level 9 allows
#    no JPEG chosen by image analysis). A whole update rectangle above 16/s is sent as one JPEG without
#    looking for solid areas.
#  * 2 s after a cell stopped changing its frequency drops to 0 and QEMU sends its lossy parts again,
#    losslessly, with the next incremental update.
#  So a static screen never gets JPEG, even with lossy=on and quality 9. The test animates a band (J) of the
#  screen, one row per cell row, through 30 different pictures as fast as the guest can write them, while the
#  client keeps an update request pending, until the client sees JPEG; asks for a full update at once (JPEG
#  in J); then stops and waits for the lossless refresh. The layout keeps everything but J lossless for any
#  frequency QEMU can measure (at most 10 / (9 * 30 ms) = 37/s): J (3 cell rows at the bottom) sits below a
#  solid margin, and every solid area above the margin ends early enough that a rectangle reaching from it to
#  the bottom of the screen averages below 16/s. How soon QEMU reaches 16/s depends on how regularly it gets
#  the CPU: the test allows 25 s.
use v5.36;
use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC;
use NativeVNC::Test::Guest;
use NativeVNC::Test::Image qw(read_ppm differing_pixels channel_errors distinct_colours);
use NativeVNC::Test::Util qw(group_pids live_groups);

$SIG{ALRM} = sub { diag 'test did not finish within 300s'; exit 1 };
alarm 300;

my %ENCODING = (Raw => 0, Hextile => 5, Zlib => 6, Tight => 7, ZRLE => 16, TightPNG => -260);
my %PIXEL_ENCODING = map { $_ => 1 } 0, 1, 2, 5, 6, 7, 15, 16, -260;    # the rest are pseudo-encodings
use constant { DESKTOP_SIZE => -223, LAST_RECT => -224, JPEG_QUALITY_9 => -23 };

# Screen layout (rows; the screen is 1024x768).
my ($W, $H) = (1024, 768);
use constant {
    CONSOLE_END => 128,    # 0..127: the console's text (busybox banner, prompt, a line of ours)
    NOISE_Y => 128,        # 128..255: random noise
    FEW_Y => 256,          # 256..319: 8-colour noise (each channel 0x00 or 0xff)
    GREY_Y => 320,         # 320..383: 4 solid grey stripes of 16 rows
    GRAD_Y => 384,         # 384..447: smooth colour gradient
    FEW2_Y => 448,         # 448..511: 2-level noise (0x40 / 0xc0 per channel)
    MARGIN_Y => 512,       # 512..575: solid margin
    J_Y => 576,            # 576..767: the JPEG band: per 64 rows, 48 gradient rows and a 16-row grey stripe
};
use constant TICKER_ROWS => (40, 72, 136);    # rows of J that the animation changes (groups 2, 4, 8)
# The pictures of them it cycles through: f0 with all channels shifted by these amounts. Consecutive ones
# differ by 9 or more, so that a row QEMU catches half written cannot pass for a JPEG version of one.
my @SHIFTS = map { ($_ + 1, -(($_ + 8) % 15 + 1)) } 0 .. 14;    # 1, -9, 2, -10, ..., 7, -15, 8, -1, ..., 15, -8
# The rectangle changed for incremental updates: x 256..511, rows 160..287 (noise and 8-colour noise).
use constant { INC_X => 256, INC_W => 256, INC_Y => 160, INC_H => 128 };

my $tmp = tempdir('nativevnc-t11-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $D = '/tmp/nv';    # work directory in the guest
my ($bpp, $stride);   # guest framebuffer: bytes per pixel, bytes per row

my $started = time;
my $guest = NativeVNC::Test::Guest->start(vnc_extra => ',lossy=on');
my $qemu_pid = $guest->pid;
diag sprintf 'guest ready after %.1f s', $guest->wait_ready;

# --- helpers ---------------------------------------------------------------------------------------------

sub sh ($command, $timeout = 60) { return $guest->run($command, $timeout) }

# The client's screen (a snapshot, NativeVNC::Image) as {width, height, rgb}, through write() of a PPM,
# cross-checked against get_pixel at 1500 spread-out pixels.
sub client_screen ($client) { return image_screen($client->snapshot) }

sub image_screen ($image) {
    my $file = "$tmp/client.ppm";
    $image->write($file);
    my $screen = read_ppm($file);
    my $bad = 0;
    for (my $i = 7; $i < $W * $H; $i += 523) {
        my ($x, $y) = ($i % $W, int($i / $W));
        my ($b, $g, $r) = $image->get_pixel($x, $y);
        $bad++ if pack('C3', $r, $g, $b) ne substr($screen->{rgb}, $i * 3, 3);
    }
    die "NativeVNC::Image: write() and get_pixel() disagree at $bad sampled pixels\n" if $bad;
    return $screen;
}

sub same_screen ($got, $want, $name) {
    my ($count, $list) = differing_pixels($got, $want);
    return pass($name) unless $count;
    fail($name);
    diag "$count pixels differ (R,G,B), first ones:\n  " . join("\n  ", @$list);
    return 0;
}

sub connect_client ($encodings) {
    my $client = NativeVNC::Client->new;
    my $status = $client->connect({ host => $guest->vnc_host, port => $guest->vnc_port, encodings => $encodings });
    die "not connected\n" unless $status->{connected};
    die "unexpected size $status->{width}x$status->{height}\n" unless "$status->{width}x$status->{height}" eq "${W}x$H";
    return $client;
}

# The pixel encodings (not pseudo-encodings) the client received rectangles in, with counts.
sub pixel_encodings ($client) {
    my $counts = $client->encoding_counts;
    return { map { $_ => $counts->{$_} } grep { $PIXEL_ENCODING{$_} } keys %$counts };
}

sub encodings_text ($client) {
    my $counts = $client->encoding_counts;
    return join ', ', map { "$_: $counts->{$_}" } sort { $a <=> $b } keys %$counts;
}

# Requests a full (non-incremental) update and waits for it.
sub full_update ($client, $timeout = 15) {
    $client->request_update(0);
    return $client->wait_update($timeout);
}

# Asks for incremental updates until $check->(client screen) is true or $tries updates came; returns the
# last client screen and the number of updates it took (0: none came within $timeout).
sub incremental_until ($client, $check, $tries = 5, $timeout = 10) {
    my ($screen, $n) = (undef, 0);
    while ($n < $tries) {
        $client->request_update(1);
        last unless $client->wait_update($timeout);
        $n++;
        $screen = client_screen($client);
        return ($screen, $n) if $check->($screen);
    }
    return ($screen, $n ? -$n : 0);
}

# New random content in the incremental rectangle, row by row from the guest's noise pool.
sub change_rectangle ($seed) {
    my $bs = INC_W * $bpp;
    my $per_row = $stride / $bs;
    my $first = INC_Y * $per_row + INC_X / INC_W;
    sh("i=0; while [ \$i -lt ${\ INC_H} ]; do dd if=$D/pool of=/dev/fb0 bs=$bs count=1 skip=\$((i * 3 + $seed))"
      . " seek=\$(($first + i * $per_row)) 2>/dev/null; i=\$((i + 1)); done");
}

# A subtest whose exceptions (e.g. the client's connection broke: NativeVNC::Error) count as a failure
# instead of ending the test.
sub guarded_subtest ($name, $code) {
    subtest $name => sub {
        my $ok = eval { $code->(); 1 };
        my $error = $@;
        ok($ok, 'no exception')
          or diag 'died: ' . (ref $error && $error->can('kind') ? $error->kind . ': ' . $error->message : $error);
    };
}

# --- the test screen -------------------------------------------------------------------------------------

subtest 'test screen painted in the guest' => sub {
    my ($size, $bits, $row_bytes) =
      split /\n/, sh('cd /sys/class/graphics/fb0 && cat virtual_size bits_per_pixel stride');
    is($size, "$W,$H", "guest framebuffer is ${W}x$H");
    ok($bits == 24 || $bits == 32, "guest framebuffer has 24 or 32 bits per pixel (has $bits)");
    ($bpp, $stride) = ($bits / 8, $row_bytes);
    cmp_ok($stride, '>=', $W * $bpp, "row stride $stride bytes");
    diag "guest framebuffer: ${W}x$H, $bits bpp, stride $stride";

    my $t = time;
    # Smooth gradients: J's picture f0 (12 groups of 16 identical rows: groups 3, 7, 11 grey, the others
    # gradients) and 4 gradient groups for the static band, all channels within 16..239 (no byte is 0:
    # busybox awk strings end at a NUL). Then the animation's frames: rows 40..136 of J, block0 as in f0, and
    # block1.. whose ticker rows have every channel shifted by @SHIFTS.
    my $awk = <<~'AWK';
        function pixel(b, g, r) { return sprintf(bpp == 4 ? "%c%c%c%c" : "%c%c%c", b, g, r, 255) }
        function row(k,   s, x, v) {
            s = ""
            if (k % 4 == 3) { v = 48 + 32 * int(k / 4); for (x = 0; x < w; x++) s = s pixel(v, v, v) }
            else for (x = 0; x < w; x++)
                s = s pixel(16 + int(x * 223 / 1023), 239 - int(x * 223 / 1023), 16 + int(x / 16) + 8 * k)
            return s sprintf("%" (stride - w * bpp) "s", "")
        }
        function out(file, s,   i) { for (i = 0; i < 16; i++) printf "%s", s > file }
        BEGIN {
            for (k = 0; k < 12; k++) out(dir "/f0", row(k))
            for (k = 0; k < 4; k++) out(dir "/grad", row(4 * k + 1))
        }
        AWK
    $awk =~ s/'/'\\''/g;
    my ($from, $rows) = ((TICKER_ROWS)[0], (TICKER_ROWS)[-1] - (TICKER_ROWS)[0] + 1);
    my $offsets = join ' ', map { $_ - $from } TICKER_ROWS;
    my $variant = "variant() { cp $D/block0 $D/block\$1 && for o in $offsets; do"
      . " dd if=$D/block0 bs=$stride skip=\$o count=1 2>/dev/null | tr '\\020-\\357' \"\$2\""
      . " | dd of=$D/block\$1 bs=$stride seek=\$o conv=notrunc 2>/dev/null; done; }";
    sh(join(' && ', "mkdir -p $D", "head -c " . ($stride * 128) . " /dev/urandom > $D/pool",
            "awk -v w=$W -v bpp=$bpp -v stride=$stride -v dir=$D '$awk'",
            "dd if=$D/f0 of=$D/block0 bs=$stride skip=$from count=$rows 2>/dev/null", $variant,
            map { sprintf q{variant %d '\\%03o-\\%03o'}, $_, 16 + $SHIFTS[$_ - 1], 239 + $SHIFTS[$_ - 1] }
              1 .. @SHIFTS),
        120);
    is(sh("wc -c < $D/f0; wc -c < $D/grad; ls $D | grep -c '^block'; cmp -l $D/block0 $D/block7 | wc -l"),
        join("\n", $stride * 192, $stride * 64, @SHIFTS + 1, 3 * 3 * $W), 'guest made the gradient images');

    my $few = sub ($y, $skip, $low, $high) {
        "dd if=$D/pool bs=$stride skip=$skip count=64 2>/dev/null"
          . " | tr '\\000-\\177' '\\$low' | tr '\\200-\\377' '\\$high' | dd of=/dev/fb0 bs=$stride seek=$y 2>/dev/null";
    };
    my $solid = sub ($y, $rows, $octal) {
        "head -c " . ($stride * $rows) . " /dev/zero | tr '\\000' '\\$octal'"
          . " | dd of=/dev/fb0 bs=$stride seek=$y 2>/dev/null";
    };
    sh(join ' && ',
        q{printf '\nNativeVNC encodings test: Raw Hextile Zlib ZRLE Tight TightPNG JPEG\n' > /dev/tty1},
        "dd if=$D/pool of=/dev/fb0 bs=$stride count=128 seek=${\ NOISE_Y} 2>/dev/null",
        $few->(FEW_Y, 0, '000', '377'),
        (map { $solid->(GREY_Y + 16 * $_, 16, sprintf '%03o', 0x20 + 0x40 * $_) } 0 .. 3),
        "dd if=$D/grad of=/dev/fb0 bs=$stride seek=${\ GRAD_Y} 2>/dev/null",
        $few->(FEW2_Y, 64, '100', '300'),
        $solid->(MARGIN_Y, 64, '120'),
        "dd if=$D/f0 of=/dev/fb0 bs=$stride seek=${\ J_Y} 2>/dev/null");
    diag sprintf 'painting the test screen took %.1f s', time - $t;

    my $first = $guest->screendump;
    sleep 0.5;
    my $second = $guest->screendump;
    is("$first->{width}x$first->{height}", "${W}x$H", 'screendump is 1024x768');
    ok($first->{rgb} eq $second->{rgb}, 'two screendumps 0.5 s apart are identical: the screen is static');
    my $colours = distinct_colours($first);
    cmp_ok($colours, '>', 100_000, "the screen has many colours ($colours)");
    cmp_ok(distinct_colours($first, NOISE_Y, NOISE_Y + 128), '>', 100_000, 'the noise band is noise');
    my $few_colours = distinct_colours($first, FEW_Y, FEW_Y + 64);
    ok($few_colours > 1 && $few_colours <= 8, "the 8-colour band has 2..8 colours ($few_colours)");
    is(distinct_colours($first, GREY_Y + 16 * $_, GREY_Y + 16 * $_ + 16), 1, "grey stripe $_ is solid") for 0 .. 3;
    is(distinct_colours($first, MARGIN_Y, MARGIN_Y + 64), 1, 'the margin is solid');
    cmp_ok(distinct_colours($first, J_Y, $H), '>', 1000, 'the JPEG band has many colours');
    cmp_ok(distinct_colours($first, 0, CONSOLE_END), '>', 1, 'the console text is there');
};

# --- lossless encodings ----------------------------------------------------------------------------------

my %sent;    # encoding list => encoding counts, for the report
my $seed = 0;
for my $name (qw(Raw Hextile Zlib ZRLE Tight TightPNG)) {
    guarded_subtest "$name: full and incremental updates are exact" => sub {
        my $enc = $ENCODING{$name};
        my $t = time;
        my $client = connect_client([$enc, DESKTOP_SIZE, LAST_RECT]);
        my $want = $guest->screendump;
        ok(full_update($client), 'a full update arrived');
        same_screen(client_screen($client), $want, 'client screen equals the screendump after the full update');

        for my $round (1, 2) {
            change_rectangle(++$seed * 5);
            my $want = $guest->screendump;
            my ($got, $updates) = incremental_until($client, sub ($s) { $s->{rgb} eq $want->{rgb} });
            ok($updates > 0, "incremental update $round: the change arrived (after $updates updates)")
              or diag "updates: $updates";
            same_screen($got // client_screen($client), $want, "incremental update $round: client screen is exact");
        }
        my $pixel = pixel_encodings($client);
        is_deeply([keys %$pixel], [$enc], "QEMU sent only $name rectangles")
          or diag 'received: ' . encodings_text($client);
        $sent{$name} = encodings_text($client);
        is_deeply([map { $_->[0] ? $_->[1] : () } $client->take_log], [], 'no warnings logged');
        $client->disconnect;
        diag sprintf '%s: %s (%.1f s)', $name, $sent{$name}, time - $t;
    };
}

# --- JPEG ------------------------------------------------------------------------------------------------

# J's rows: 48 gradient rows, then a 16-row grey stripe, per 64 rows. QEMU's JPEG subsamples colour 2x2
# (libjpeg's default 4:2:0) and JPEG decoders interpolate it back ("fancy" upsampling, libjpeg's default),
# so where a gradient meets a grey stripe the one row on either side takes a quarter of the other side's
# colour difference: up to about 1.77 * 128 / 4 = 57 per channel. Those edge rows are checked against that,
# the rest more tightly: grey stripes inside (almost) exact, gradients with the small error of quality 80
# (QEMU's JPEG quality for level 9) on smooth content.
my $j_row = sub ($y) { $y >= J_Y ? ($y - J_Y) % 64 : -1 };
my $is_gradient_row = sub ($y) { my $r = $j_row->($y); $r >= 0 && $r < 48 };
my $is_gradient_inner_row = sub ($y) { my $r = $j_row->($y); $r > 0 && $r < 47 };
my $is_grey_inner_row = sub ($y) { my $r = $j_row->($y); $r > 48 && $r < 63 };
my $is_edge_row = sub ($y) { my $r = $j_row->($y); $r == 0 || $r == 47 || $r == 48 || $r == 63 };

# The animation changes one row per 64-row band of J ("ticker rows"): QEMU counts a change anywhere in a
# 64x64 cell as a change of the cell, and 3 changed rows cost the guest and QEMU little, so that QEMU keeps
# up with its 30 ms refreshes.
my $is_ticker_row = sub ($y) { grep { $y == J_Y + $_ } TICKER_ROWS };

# A ticker row of a client screen: the variant it shows (the shift of all channels against f0), the mean
# absolute channel error against that variant and the fraction of pixels that differ from it; from packed
# R,G,B of the row (or some of its pixels) and of f0.
sub ticker_row ($got_rgb, $want_rgb) {
    my @got = unpack 'C*', $got_rgb;
    my @want = unpack 'C*', $want_rgb;
    my $sum = 0;
    $sum += $got[$_] - $want[$_] for 0 .. $#got;
    my $shift = sprintf '%.0f', $sum / @got;
    my ($error, $off) = (0, 0);
    for (my $i = 0; $i < @got; $i += 3) {
        my $e = 0;
        $e += abs($got[$_] - $want[$_] - $shift) for $i .. $i + 2;
        $error += $e;
        $off++ if $e;
    }
    return ($shift, $error / @got, $off * 3 / @got);
}

# What J of the client shows, from 28 probe pixels in each ticker row: whether each row shows one of the
# pictures exactly, or lossily (a small error at 30% of the pixels or more: JPEG leaves few of them
# exact), or none of them (QEMU read the row while the guest wrote it, which is rare, or the client decoded
# it wrongly). Returns 'exact', 'jpeg' (all rows lossy), 'partly jpeg' (the others exact) or 'mixed', and
# for 'mixed' a description of the row.
my @probe_x = grep { $_ % 37 == 3 } 0 .. $W - 1;

sub j_state ($client, $want) {
    my $image = $client->snapshot;
    my ($lossy, $mixed) = (0, '');
    for my $y (map { J_Y + $_ } TICKER_ROWS) {
        my $got = join '', map { pack 'C3', reverse $image->get_pixel($_, $y) } @probe_x;
        my $ref = join '', map { substr $want->{rgb}, ($y * $W + $_) * 3, 3 } @probe_x;
        my ($shift, $error, $off) = ticker_row($got, $ref);
        next unless $error;
        if ($error < 4 && $off >= 0.3) { $lossy++; next }
        $mixed ||= sprintf 'row %d: %s (R,G,B) at x = %d, f0 has %s; best shift %+d, mean channel error %.1f', $y,
          join(',', unpack 'C3', $got), $probe_x[0], join(',', unpack 'C3', $ref), $shift, $error;
    }
    return ('mixed', $mixed) if $mixed;
    return $lossy == 3 ? 'jpeg' : $lossy ? 'partly jpeg' : 'exact';
}

# $want with each ticker row replaced by the variant $got shows (f0 with all channels shifted alike).
sub expected_j ($got, $want) {
    my %exp = %$want;
    my $row_bytes = $W * 3;
    for my $y (map { J_Y + $_ } TICKER_ROWS) {
        my $row = substr $want->{rgb}, $y * $row_bytes, $row_bytes;
        my ($shift) = ticker_row(substr($got->{rgb}, $y * $row_bytes, $row_bytes), $row);
        substr($exp{rgb}, $y * $row_bytes, $row_bytes) = pack 'C*', map { $_ + $shift } unpack 'C*', $row;
    }
    return \%exp;
}

# Channel errors (NativeVNC::Test::Image::channel_errors) within J, of the rows for which $rows->($y) is true.
sub j_errors ($got, $want, $rows) {
    return channel_errors($got, $want, rect => [0, J_Y, $W, $H - J_Y], rows => $rows);
}

# The client's screen compared with QEMU's while J shows JPEG: exact above J, within JPEG's error in J.
sub check_jpeg_screen ($what, $got, $want, $lossy_rows, $lossy_part) {
    my $exp = expected_j($got, $want);
    my $above = J_Y * $W * 3;
    ok(substr($got->{rgb}, 0, $above) eq substr($exp->{rgb}, 0, $above), "$what: everything above J is exact") or do {
        my ($count, $list) =
          differing_pixels(map { { width => $W, height => J_Y, rgb => substr($_->{rgb}, 0, $above) } } $got, $exp);
        diag "$count pixels differ, first ones:\n  " . join("\n  ", @$list);
    };
    my $grad = j_errors($got, $exp, $is_gradient_row);
    my $grad_inner = j_errors($got, $exp, $is_gradient_inner_row);
    my $bias = j_errors($got, $exp, sub ($y) { $lossy_rows->($y) && $is_gradient_inner_row->($y) })->{bias};
    my $lossy = j_errors($got, $exp, $lossy_rows);
    my $grey = j_errors($got, $exp, $is_grey_inner_row);
    my $edge = j_errors($got, $exp, $is_edge_row);
    diag sprintf '%s: J gradients: %d of %d pixels differ (%s: %d of %d), mean channel error %.3f, max %d'
      . ' (not next to a grey stripe: %d, %.3f%% of channels off by more than 8;'
      . ' bias of the lossy ones: R %+.3f G %+.3f B %+.3f);'
      . ' grey stripes: %d pixels differ, max %d; edge rows: %d differ, mean %.2f, max %d', $what,
      @$grad{qw(differing compared)}, $lossy_part, @$lossy{qw(differing compared)}, @$grad{qw(mean max)},
      $grad_inner->{max}, 100 * $grad_inner->{over8} / $grad_inner->{compared} / 3, @$bias,
      @$grey{qw(differing max)}, @$edge{qw(differing mean max)};
    cmp_ok($lossy->{differing}, '>', $lossy->{compared} / 10, "$what: J's $lossy_part are lossy (JPEG)");
    cmp_ok($grad->{mean}, '<', 4, "$what: mean channel error in J's gradients below 4");
    cmp_ok($grad_inner->{over8}, '<', $grad_inner->{compared} * 3 / 100,
        "$what: less than 1% of their channels off by more than 8 (but next to grey stripes)");
    ok(!(grep { abs($_) >= 1 } @$bias),
        "$what: no channel of the lossy rows off by 1 or more on average (JPEG's error has no bias)");
    cmp_ok($grey->{max}, '<=', 2,
        "$what: J's grey stripes are exact but for their edge rows (channels off by 2 at most)");
    cmp_ok($edge->{max}, '<=', 64, "$what: rows where gradients and grey stripes meet are off by 64 at most");
}

# Animating J in the guest: a background loop writing the variants of rows 40..136 of J in turn, one dd
# each, until told to stop, then block0 (f0 again). So many different pictures that QEMU, which compares
# what it sees at each refresh with the previous one, sees a change every time (with just two pictures it
# would see the same one again about every other refresh, and slow its refreshes down).
my $animation_stopped = 0;

sub start_animation () {
    my $dd = "of=/dev/fb0 bs=$stride seek=${\ (J_Y + (TICKER_ROWS)[0])} 2>/dev/null";
    sh("rm -f $D/stop; touch $D/running; ( while [ ! -e $D/stop ]; do for i in @{[1 .. @SHIFTS]}; do"
      . " [ -e $D/stop ] && break; dd if=$D/block\$i $dd; done; done; dd if=$D/block0 $dd; rm $D/running )"
      . ' >/dev/null 2>&1 &');
}

# Stops the animation if it runs (it ends with f0); returns whether it did.
sub stop_animation () {
    my $was = sh("if [ -e $D/running ]; then touch $D/stop;"
          . " while [ -e $D/running ]; do usleep 5000; done; echo 1; fi", 10);
    $animation_stopped = time if $was;
    return $was;
}
for my $case (['TightPNG', [$ENCODING{TightPNG}, JPEG_QUALITY_9, DESKTOP_SIZE]],
    ['Tight', [$ENCODING{Tight}, JPEG_QUALITY_9, DESKTOP_SIZE]])
{
    my ($name, $encodings) = @$case;
    guarded_subtest "$name with JPEG quality 9: JPEG while J changes often, exact otherwise" => sub {
        # J must not have changed for 2 s (QEMU's statistics forget it then), whatever the previous case did.
        stop_animation();
        sleep $animation_stopped + 2.5 - time if $animation_stopped + 2.5 > time;
        my $client = connect_client($encodings);
        my $want = $guest->screendump;
        ok(full_update($client), 'a full update arrived');
        same_screen(client_screen($client), $want, 'static screen: the full update is exact (no JPEG)');

        # Animate J as fast as the guest can; the client keeps an incremental request pending at all times
        # (one every 10 ms), so that QEMU refreshes every 30 ms.
        start_animation();
        my $t = time;
        my ($updates, $attempts, $incremental, $full, $first_lossy, $mixed, %states) = (0, 0);
        $client->poll;
        # (a) Until the client saw QEMU send some of J's ticker rows as JPEG (at most 25 s: QEMU's measure of
        # J's update frequency depends on how regularly it gets to refresh, which a busy machine disturbs).
        # (b) Then at once a full update: QEMU sends J as JPEG if its frequency is still high. It recomputes
        # it every 0.5 s: if the full update came without JPEG, again (at most 5 times).
        while (time - $t < 25 && $attempts < 5) {
            my $state = '';
            while (time - $t < 25) {
                $client->request_update(1);
                $client->wait_update(0.01);
                my ($n) = $client->poll;
                next unless $n;
                $updates += $n;
                ($state, my $detail) = j_state($client, $want);
                $states{$state}++;
                $mixed = $detail if $detail;
                last if $state =~ /jpeg/;    # 'jpeg' or 'partly jpeg'
            }
            last unless $state =~ /jpeg/;
            $first_lossy //= time - $t;
            $incremental = $client->snapshot;
            $client->take_damage;
            $client->request_update(0);
            my $deadline = time + 10;
            until (grep { $_->[1] == 0 } $client->take_damage) {    # the full update starts at the top
                die "no full update within 10 s\n" if time > $deadline;
                $client->wait_update(1);
            }
            $full = $client->snapshot;
            $attempts++;
            my $image = image_screen($full);
            last if j_errors($image, expected_j($image, $want), $is_gradient_row)->{differing};
        }
        ok(stop_animation(), 'the animation ran until stopped');
        my $stopped = $animation_stopped;
        diag sprintf '%d updates in %.1f s of animation, the first lossy one after %s s, %d full update(s);'
          . ' J seen as: %s',
          $updates, $stopped - $t, $first_lossy ? sprintf('%.2f', $first_lossy) : '(none)', $attempts,
          join ', ', map { "$_ $states{$_}" } sort keys %states;
        diag "a ticker row matching none of the guest's pictures: $mixed" if $mixed;
        ok($incremental, 'QEMU sent J as JPEG while it changed often') or return diag(
            ($states{mixed} // 0) > ($states{exact} // 0)
            ? 'most updates showed ticker rows matching none of the guest\'s pictures: the client decodes them wrongly?'
            : 'no JPEG: QEMU did not refresh often enough (see the update count)');
        ok($full, 'a full update arrived while J changed often') or return;
        check_jpeg_screen('incremental updates', image_screen($incremental), $want, $is_ticker_row, 'ticker rows');
        check_jpeg_screen('full update', image_screen($full), $want, $is_gradient_row, 'gradients');

        # (c) 2 s after the last change QEMU sends the lossy parts again, losslessly.
        my ($after, $n) = incremental_until($client, sub ($s) { $s->{rgb} eq $want->{rgb} }, 10, 5);
        my $c_time = time - $stopped;
        ok($n > 0, sprintf 'QEMU sent J again, %.1f s after the animation stopped', $c_time);
        cmp_ok($c_time, '>', 1.5, '... only once J had not changed for about 2 s');
        same_screen($after // client_screen($client), $want, 'then the client screen is exact');
        my ($changed) = differing_pixels($guest->screendump, $want);
        is($changed, 0, '(the screen is as painted again)');

        my $pixel = pixel_encodings($client);
        is_deeply([keys %$pixel], [$encodings->[0]], "QEMU sent only $name rectangles")
          or diag 'received: ' . encodings_text($client);
        $sent{"$name + JPEG quality 9"} = encodings_text($client);
        $client->disconnect;
    };
}

# --- cleanup ---------------------------------------------------------------------------------------------

sub parent_of ($pid) {
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // return 0;
    my ($ppid) = substr($stat, rindex($stat, ')') + 2) =~ /^\S (\d+)/;
    return $ppid // 0;
}

subtest 'nothing left behind' => sub {
    $guest->stop;
    ok(!$guest->alive, 'guest stopped');
    ok(!kill(0, $qemu_pid), "qemu process $qemu_pid is gone");
    is_deeply([group_pids($qemu_pid)], [], "qemu process group $qemu_pid is empty");
    is_deeply([live_groups()], [], 'no spawned process group left unreaped');
    opendir my $proc, '/proc' or die "/proc: $!";
    my @children = grep { /^\d+$/ && parent_of($_) == $$ } readdir $proc;
    is_deeply(\@children, [], 'the test process has no child processes');
};

diag "encodings received ($_): $sent{$_}" for sort keys %sent;
diag sprintf 'whole test %.1f s', time - $started;
alarm 0;
done_testing;
