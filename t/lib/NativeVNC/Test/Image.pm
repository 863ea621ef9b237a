package NativeVNC::Test::Image;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);

use NativeVNC::Test::Util qw(slurp_or_die);

our @EXPORT_OK = qw(read_ppm parse_ppm rgb_at crop_rgb differing_pixels channel_errors distinct_colours rng);

=head1 NAME

NativeVNC::Test::Image - screens as C<{width, height, rgb}> in the tests: PPM files in, pixels compared

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::Image qw(read_ppm differing_pixels channel_errors distinct_colours rgb_at rng);

  my $got = read_ppm("$tmp/shot.ppm");                   # {width, height, rgb}
  my ($count, $first) = differing_pixels($got, $guest->screendump);
  diag "$count pixels differ:\n  " . join "\n  ", @$first if $count;
  my $e = channel_errors($got, $truth, rect => [0, 0, 256, 128]);   # {max, mean, differing, ...}
  cmp_ok(distinct_colours($got, 128, 256), '>', 100_000, 'rows 128..255 are noise');
  my ($r, $g, $b) = rgb_at($got, 10, 20);
  my $rng = rng(42);                                     # the same pictures on every run
  my @colour = map { $rng->(256) } 1 .. 3;

=head1 DESCRIPTION

A screen here is a hash reference C<{width, height, rgb}>, C<rgb> being packed R,G,B bytes, row-major, with no
padding: what QEMU's screendump, Xvnc's root window, a PPM written by C<NativeVNC::Image> or tinycv, and the
nativevnc program's screenshots all become, so that the tests compare them with each other.

=head1 FUNCTIONS

=head2 read_ppm($path)

Reads a binary PPM file (C<P6>, maxval 255) into a screen; dies naming the file if it cannot be read or is not
such a PPM.

=head2 parse_ppm($data, $what)

The same for PPM bytes in memory (say tinycv's C<ppm_data>); C<$what> names them in errors.

=cut

sub read_ppm ($path) {
    return parse_ppm(slurp_or_die($path), $path);
}

sub parse_ppm ($data, $what) {
    my @fields;
    pos($data) = 0;
    while (@fields < 4) {
        $data =~ /\G(?:\s+|#[^\n]*\n)*/gc;
        $data =~ /\G(\S+)/gc or croak "$what: truncated PPM header";
        push @fields, $1;
    }
    my ($magic, $width, $height, $maxval) = @fields;
    croak "$what: not a binary PPM ($magic)" unless $magic eq 'P6';
    croak "$what: maxval $maxval not supported" unless $maxval eq '255';
    my $rgb = substr $data, pos($data) + 1;    # exactly one whitespace byte after maxval
    croak "$what: expected " . $width * $height * 3 . ' bytes of pixels, got ' . length $rgb
      unless length $rgb == $width * $height * 3;
    return { width => $width + 0, height => $height + 0, rgb => $rgb };
}

=head2 rgb_at($image, $x, $y)

The (R, G, B) list of pixel C<$x>,C<$y>; dies outside the screen.

=head2 crop_rgb($image, $x, $y, $w, $h)

The packed R,G,B bytes (row-major) of a rectangle of the screen; dies if it does not fit.

=cut

sub rgb_at ($image, $x, $y) {
    croak "pixel $x,$y outside $image->{width}x$image->{height}"
      if $x < 0 || $y < 0 || $x >= $image->{width} || $y >= $image->{height};
    return unpack 'C3', substr($image->{rgb}, ($y * $image->{width} + $x) * 3, 3);
}

sub crop_rgb ($image, $x, $y, $w, $h) {
    croak "rectangle $w x $h at $x,$y outside $image->{width}x$image->{height}"
      if $x < 0 || $y < 0 || $x + $w > $image->{width} || $y + $h > $image->{height};
    return join '', map { substr($image->{rgb}, (($y + $_) * $image->{width} + $x) * 3, $w * 3) } 0 .. $h - 1;
}

=head2 differing_pixels($got, $want, $first = 6)

The number of pixels that differ between two screens (-1 if their sizes differ) and a reference to a list of
descriptions of the first C<$first> of them, C<(x,y): got R,G,B, want R,G,B> (or of the two sizes). In scalar
context only the number.

=cut

sub differing_pixels ($got, $want, $first = 6) {
    my ($count, @list) = (0);
    if ($got->{width} != $want->{width} || $got->{height} != $want->{height}) {
        ($count, @list) = (-1, "size $got->{width}x$got->{height}, expected $want->{width}x$want->{height}");
    }
    elsif ($got->{rgb} ne $want->{rgb}) {
        my $xor = $got->{rgb} ^. $want->{rgb};
        while ($xor =~ /[^\0]/g) {
            my $p = int((pos($xor) - 1) / 3);
            $count++;
            push @list, sprintf('(%d,%d): got %s, want %s', $p % $want->{width}, int($p / $want->{width}),
                map { join ',', unpack 'C3', substr($_->{rgb}, $p * 3, 3) } $got, $want) if @list < $first;
            pos($xor) = ($p + 1) * 3;
        }
    }
    return wantarray ? ($count, \@list) : $count;
}

=head2 channel_errors($got, $want, %opt)

How far the channels of screen C<$got> are from those of C<$want> (of the same size), for lossy encodings:
within C<< rect => [$x, $y, $w, $h] >> (default the whole screen), and of its rows only those C<$y> for which
C<< rows => sub ($y) {...} >> is true (default all). Returns a hash reference:

=over

=item C<max>: the largest absolute channel error

=item C<mean>: the mean absolute channel error over all channels compared (0 if none)

=item C<differing>, C<compared>: pixels that differ, pixels compared

=item C<over8>: channels off by more than 8

=item C<bias>: C<[R, G, B]>, the mean signed error of each channel over the pixels compared

=back

=cut

sub channel_errors ($got, $want, %opt) {
    my ($x0, $y0, $w, $h) = $opt{rect} ? @{ $opt{rect} } : (0, 0, $want->{width}, $want->{height});
    my $rows = $opt{rows} // sub ($y) { 1 };
    my ($sum, $max, $compared, $differing, $over8, @signed) = (0, 0, 0, 0, 0, 0, 0, 0);
    for my $y ($y0 .. $y0 + $h - 1) {
        next unless $rows->($y);
        my $offset = ($y * $want->{width} + $x0) * 3;
        my ($g, $t) = (substr($got->{rgb}, $offset, $w * 3), substr($want->{rgb}, $offset, $w * 3));
        $compared += $w;
        next if $g eq $t;
        my @g = unpack 'C*', $g;
        my @t = unpack 'C*', $t;
        for (my $i = 0; $i < @g; $i += 3) {
            my $off = 0;
            for my $c (0 .. 2) {
                my $d = $g[$i + $c] - $t[$i + $c];
                next unless $d;
                $signed[$c] += $d;
                $d = -$d if $d < 0;
                $sum += $d;
                $max = $d if $d > $max;
                $over8++ if $d > 8;
                $off = 1;
            }
            $differing += $off;
        }
    }
    return { max => $max, mean => $compared ? $sum / ($compared * 3) : 0, differing => $differing,
        compared => $compared, over8 => $over8, bias => [map { $compared ? $_ / $compared : 0 } @signed] };
}

=head2 distinct_colours($image, $y0 = 0, $y1 = height)

The number of different colours in rows C<$y0> to C<$y1 - 1> of the screen.

=cut

sub distinct_colours ($image, $y0 = 0, $y1 = $image->{height}) {
    my $row = $image->{width} * 3;
    my %seen;
    @seen{ unpack '(a3)*', substr($image->{rgb}, $y0 * $row, ($y1 - $y0) * $row) } = ();
    return scalar keys %seen;
}

=head2 rng($seed)

A generator of pseudo-random integers for drawing test pictures: a code reference that returns an integer in
C<0 .. $n - 1> for C<< $rng->($n) >> (default C<$n> is 2**32). xorshift32, so that the same seed gives the same
sequence on every perl and every run.

=cut

sub rng ($seed) {
    my $state = (($seed * 2654435761) + 0x9e3779b9) & 0xffffffff || 1;
    return sub ($n = 2**32) {
        $state ^= ($state << 13) & 0xffffffff;
        $state ^= $state >> 17;
        $state ^= ($state << 5) & 0xffffffff;
        return $state % $n;
    };
}

1;
