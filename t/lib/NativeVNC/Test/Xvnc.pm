package NativeVNC::Test::Xvnc;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use X11::Protocol;

use NativeVNC::Test::Image qw(rng);
use NativeVNC::Test::Util qw(
  free_tcp_port free_x_display wait_until with_timeout spawn_group stop_group reap file_tail read_exactly
  mirror_bits
);

# The fixed DES key of VNC password files (as the VNC DES variant spells it; mirrored for standard DES).
my @PASSWORD_FILE_KEY = (23, 82, 107, 6, 35, 78, 88, 7);

=head1 NAME

NativeVNC::Test::Xvnc - a TigerVNC Xvnc server on 127.0.0.1 that the tests draw on with X11::Protocol

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::Xvnc;

  my $xvnc = NativeVNC::Test::Xvnc->start;                 # or start(password => 'secret')
  my $scene = $xvnc->draw_scene(42);                       # deterministic for a given seed
  my $rect = $scene->{solids}[0];                          # {x, y, w, h, rgb => [r, g, b]}
  $xvnc->copy_area(0, 0, 100, 100, 600, 500);              # clients that accept it get CopyRect
  $xvnc->sync;
  my $truth = $xvnc->root_image;                           # {width, height, rgb}
  connect_my_client($xvnc->host, $xvnc->port);
  $xvnc->stop;                                             # DESTROY does it too

=head1 DESCRIPTION

Runs

  Xvnc :<display> -geometry 1024x768 -depth 24 -rfbport <port> -interface 127.0.0.1
       -nolisten tcp -AlwaysShared -UseBlacklist=0 -SecurityTypes None|VncAuth [-rfbauth <file>]
       -nocursor -noreset -s 0 -dpms -desktop nativevnc-test

in its own process group, with a free display number and port (three attempts on a clash), and waits until the
RFB port answers with an RFB version and an X connection works. C<-nocursor> keeps the pointer out of the
framebuffer (TigerVNC would otherwise paint it into updates for clients without cursor pseudo-encodings),
C<-UseBlacklist=0> lets tests fail authentication any number of times (TigerVNC otherwise refuses a host for
10 s after 5 failures), C<-noreset> keeps the drawing when X clients disconnect, C<-s 0 -dpms> stop the screen from blanking. The RFB
port is bound to 127.0.0.1 only: C<-interface 127.0.0.1> without C<-localhost>, because TigerVNC's C<-localhost>
overrides C<-interface> and listens on both 127.0.0.1 and ::1.

The object keeps one X11::Protocol connection open for drawing; every X request is guarded by a timeout.

=head1 METHODS

=head2 start(%opt)

Options: C<password> (VNC authentication with a password file written by this module; at most 8 characters
count), C<geometry> (default C<1024x768>), C<depth> (default 24), C<args> (array of extra Xvnc arguments),
C<timeout> (seconds to wait for the server, default 30).

=cut

sub start ($class, %opt) {
    my $tmp = tempdir('nativevnc-xvnc-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{NATIVEVNC_KEEP_TMP});
    my $self = bless { opt => \%opt, tmp => $tmp, owner => $$ }, $class;
    $self->_write_password_file("$tmp/passwd", $opt{password}) if defined $opt{password};
    my @errors;
    for my $attempt (1 .. 3) {
        return $self if eval { $self->_launch; 1 };
        push @errors, "attempt $attempt: $@";
        $self->stop;
    }
    croak "Xvnc did not start:\n@errors";
}

sub _launch ($self) {
    my $opt = $self->{opt};
    $self->{display} = free_x_display();
    $self->{port} = free_tcp_port();
    my @command = (
        'Xvnc', ":$self->{display}",
        -geometry => $opt->{geometry} // '1024x768', -depth => $opt->{depth} // 24,
        -rfbport => $self->{port}, -interface => '127.0.0.1', -nolisten => 'tcp',
        '-AlwaysShared', '-UseBlacklist=0', '-nocursor', '-noreset', -s => 0, '-dpms', -desktop => 'nativevnc-test',
        (defined $opt->{password}
            ? (-SecurityTypes => 'VncAuth', -rfbauth => "$self->{tmp}/passwd")
            : (-SecurityTypes => 'None')),
        @{ $opt->{args} // [] },
    );
    $self->{command} = \@command;
    $self->{log} = "$self->{tmp}/xvnc-$self->{display}.log";
    $self->{pid} = spawn_group(\@command, log => $self->{log});
    wait_until($opt->{timeout} // 30, "Xvnc :$self->{display} accepting RFB and X connections", sub {
        $self->_check_alive;
        return $self->_rfb_answers && $self->_x_connect;
    });
    $self->_init_drawing;
}

sub _check_alive ($self) {
    return if $self->{pid} && !defined reap($self->{pid}, 0);
    delete $self->{pid};
    croak "Xvnc exited; its log ends with:\n" . file_tail($self->{log});
}

sub _rfb_answers ($self) {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp',
        Timeout => 2) or return 0;
    my $greeting = eval { read_exactly($sock, 12, 5) } // '';
    close $sock;
    return $greeting =~ /^RFB \d{3}\.\d{3}\n$/;
}

sub _x_connect ($self) {
    return 1 if $self->{x};
    return 0 unless -S "/tmp/.X11-unix/X$self->{display}";
    $self->{x} = eval { with_timeout(10, 'X connection', sub { X11::Protocol->new(":$self->{display}") }) };
    return $self->{x} ? 1 : 0;
}

# VNC password file: the password NUL-padded (or cut) to 8 bytes, DES-encrypted with a fixed key.
sub _write_password_file ($self, $path, $password) {
    require Crypt::DES;
    my $key = pack 'C8', map { mirror_bits($_) } @PASSWORD_FILE_KEY;
    my $encrypted = Crypt::DES->new($key)->encrypt(pack 'a8', $password);
    open my $fh, '>:raw', $path or croak "cannot write $path: $!";
    chmod 0600, $path;
    print {$fh} $encrypted;
    close $fh or croak "cannot write $path: $!";
}

=head2 host, port, display, pid, command, log_path

Where the RFB server listens (C<127.0.0.1> and a TCP port), the X display number (use C<":$display">), the
server's pid (and process group), its command line and its log file.

=cut

sub host ($self) { return '127.0.0.1' }
sub port ($self) { return $self->{port} }
sub display ($self) { return $self->{display} }
sub pid ($self) { return $self->{pid} }
sub command ($self) { return $self->{command} }
sub log_path ($self) { return $self->{log} }

=head2 x

The X11::Protocol connection, for drawing the helpers do not cover.

=head2 width, height

The root window's size.

=cut

sub x ($self) { return $self->{x} }
sub width ($self) { return $self->{width} }
sub height ($self) { return $self->{height} }

sub _init_drawing ($self) {
    my $x = $self->{x};
    my $visual = $x->{visuals}{ $x->{root_visual} };
    # X11::Protocol leaves the connection setup's enumerations as numbers (TrueColor = 4, MSBFirst = 1).
    croak "root visual class is $visual->{class}, not TrueColor" unless $visual->{class} =~ /^(?:TrueColor|4)$/;
    my $format = $x->{pixmap_formats}{ $x->{root_depth} };
    croak "unsupported ZPixmap format: $format->{bits_per_pixel} bits per pixel"
      unless $format->{bits_per_pixel} == 32;
    $self->{pixel} = {
        big_endian => ($x->{image_byte_order} =~ /^(?:MostSignificant|1)$/ ? 1 : 0),
        map { my $mask = $visual->{"${_}_mask"}; ($_ => [_mask_shift($mask), _mask_bits($mask)]) }
          qw(red green blue),
    };
    @$self{qw(width height)} = ($x->{width_in_pixels}, $x->{height_in_pixels});
    $self->{gc} = $x->new_rsrc;
    $self->_x(CreateGC => $self->{gc}, $x->{root}, graphics_exposures => 0, line_width => 0);
}

sub _mask_shift ($mask) { my $shift = 0; $shift++ until ($mask >> $shift) & 1; return $shift }
sub _mask_bits ($mask) { return unpack '%32b*', pack 'N', $mask }

sub _x ($self, $request, @args) {
    croak 'Xvnc is not running' unless $self->{x};
    local $SIG{PIPE} = 'IGNORE';
    return with_timeout(60, "X request $request", sub {
        my @result = $self->{x}->$request(@args);
        $self->{x}->flush;    # requests without a reply would otherwise wait in the socket's buffer
        return @result;
    });
}

=head2 pixel($r, $g, $b)

The server's pixel value for a colour (0..255 each).

=cut

sub pixel ($self, $r, $g, $b) {
    my $p = $self->{pixel};
    my $value = 0;
    for ([$r, $p->{red}], [$g, $p->{green}], [$b, $p->{blue}]) {
        my ($c, $shift, $bits) = ($_->[0], @{ $_->[1] });
        $value |= ($c >> (8 - $bits)) << $shift;
    }
    return $value;
}

=head2 fill_rect($x, $y, $w, $h, [$r, $g, $b])

Fills a rectangle of the root window with a solid colour.

=cut

sub fill_rect ($self, $x, $y, $w, $h, $rgb) {
    $self->_x(ChangeGC => $self->{gc}, foreground => $self->pixel(@$rgb));
    $self->_x(PolyFillRectangle => $self->{x}{root}, $self->{gc}, [$x, $y, $w, $h]);
}

=head2 put_rgb($x, $y, $w, $h, $rgb)

Puts packed R,G,B bytes (row-major, C<$w * $h * 3> bytes) on the root window with PutImage in the server's
ZPixmap format, in strips that fit the maximum request length.

=cut

sub put_rgb ($self, $x0, $y0, $w, $h, $rgb) {
    croak 'put_rgb: wrong data length' unless length $rgb == $w * $h * 3;
    my $x = $self->{x};
    my $rows_per_request = int(($x->{maximum_request_length} * 4 - 64) / ($w * 4)) || croak 'put_rgb: too wide';
    for (my $row = 0; $row < $h; $row += $rows_per_request) {
        my $rows = $h - $row < $rows_per_request ? $h - $row : $rows_per_request;
        my $data = $self->_zpixmap(substr($rgb, $row * $w * 3, $rows * $w * 3));
        $self->_x(PutImage => $x->{root}, $self->{gc}, $x->{root_depth}, $w, $rows, $x0, $y0 + $row, 0,
            'ZPixmap', $data);
    }
}

# Packed RGB to 32-bit ZPixmap data.
sub _zpixmap ($self, $rgb) {
    my $p = $self->{pixel};
    my @values;
    if ($p->{red}[0] == 16 && $p->{green}[0] == 8 && $p->{blue}[0] == 0) {
        @values = unpack 'N*', join '', map { "\0$_" } unpack '(a3)*', $rgb;
    }
    else {
        my @c = unpack 'C*', $rgb;
        push @values, $self->pixel(splice @c, 0, 3) while @c;
    }
    return pack $p->{big_endian} ? 'N*' : 'V*', @values;
}

=head2 copy_area($src_x, $src_y, $w, $h, $dst_x, $dst_y)

XCopyArea from the root window to itself (Xvnc sends this as CopyRect to clients that accept it).

=cut

sub copy_area ($self, $src_x, $src_y, $w, $h, $dst_x, $dst_y) {
    my $root = $self->{x}{root};
    $self->_x(CopyArea => $root, $root, $self->{gc}, $src_x, $src_y, $w, $h, $dst_x, $dst_y);
}

=head2 sync

An X round trip (GetInputFocus): everything drawn before has been executed by the server.

=cut

sub sync ($self) {
    $self->_x('GetInputFocus');
    return 1;
}

=head2 root_image

The root window's pixels through GetImage: C<{width, height, rgb}>, C<rgb> being packed R,G,B bytes, row-major
(the same shape as L<NativeVNC::Test::Guest/screendump>).

=cut

sub root_image ($self) {
    my ($w, $h) = @$self{qw(width height)};
    my $x = $self->{x};
    my $rgb = '';
    my $rows_per_request = int(4_000_000 / ($w * 4)) || 1;
    for (my $row = 0; $row < $h; $row += $rows_per_request) {
        my $rows = $h - $row < $rows_per_request ? $h - $row : $rows_per_request;
        my ($depth, $visual, $data) = $self->_x(GetImage => $x->{root}, 0, $row, $w, $rows, 0xffffffff, 'ZPixmap');
        $rgb .= $self->_rgb_from_zpixmap(substr $data, 0, $w * $rows * 4);
    }
    return { width => $w, height => $h, rgb => $rgb };
}

sub _rgb_from_zpixmap ($self, $data) {
    my $p = $self->{pixel};
    my @values = unpack $p->{big_endian} ? 'N*' : 'V*', $data;
    if ($p->{red}[0] == 16 && $p->{green}[0] == 8 && $p->{blue}[0] == 0) {
        (my $rgb = pack 'N*', @values) =~ s/.(...)/$1/sg;
        return $rgb;
    }
    return pack 'C*', map {
        my $v = $_;
        map { (($v >> $_->[0]) & ((1 << $_->[1]) - 1)) << (8 - $_->[1]) } @$p{qw(red green blue)}
    } @values;
}

=head2 draw_scene($seed)

Paints a deterministic scene (the same for the same seed and screen size) over the whole root window and
returns its description. The screen is split in quadrants:

=over

=item top left: large solid rectangles

a background colour and four rectangles (2 by 2 grid, jittered margins) of other colours; listed in
C<< $scene->{solids} >> as C<{x, y, w, h, rgb => [r, g, b]}> and never drawn over afterwards;

=item top right: small rectangles

300 rectangles of 1 to 24 pixels a side in 8 colours on a background (RRE, Hextile subrectangles);

=item bottom left: noise and lines

left half pseudo-random pixels put with PutImage (worst case for every encoder), right half thin one-pixel lines
of several colours;

=item bottom right: gradient

a smooth two-axis gradient put with PutImage (many colours, no runs: Tight's gradient filter, ZRLE raw tiles).

=back

C<< $scene->{regions} >> gives each area as C<[x, y, w, h]> (keys C<solids>, C<small>, C<noise>, C<lines>,
C<gradient>). Returns after a L</sync>.

=cut

sub draw_scene ($self, $seed) {
    my $rng = rng($seed);
    my ($w, $h) = @$self{qw(width height)};
    my ($hw, $hh, $qw) = (int($w / 2), int($h / 2), int($w / 4));
    my %regions = (
        solids => [0, 0, $hw, $hh], small => [$hw, 0, $w - $hw, $hh],
        noise => [0, $hh, $qw, $h - $hh], lines => [$qw, $hh, $hw - $qw, $h - $hh],
        gradient => [$hw, $hh, $w - $hw, $h - $hh],
    );
    my $scene = { seed => $seed, width => $w, height => $h, regions => \%regions };
    $scene->{solids} = $self->_draw_solids($rng, @{ $regions{solids} });
    $self->_draw_small_rects($rng, @{ $regions{small} });
    $self->_draw_noise($rng, @{ $regions{noise} });
    $self->_draw_lines($rng, @{ $regions{lines} });
    $self->_draw_gradient($rng, @{ $regions{gradient} });
    $self->sync;
    return $scene;
}

sub _colour ($rng) { return [map { $rng->(256) } 1 .. 3] }

# Distinct colours (no two alike), so a test can tell the rectangles apart.
sub _palette ($rng, $count) {
    my (%seen, @colours);
    while (@colours < $count) {
        my $c = _colour($rng);
        push @colours, $c unless $seen{"@$c"}++;
    }
    return @colours;
}

sub _draw_solids ($self, $rng, $x0, $y0, $w, $h) {
    my ($background, @colours) = _palette($rng, 5);
    $self->fill_rect($x0, $y0, $w, $h, $background);
    my ($cw, $ch) = (int($w / 2), int($h / 2));
    my @solids;
    for my $cell (0 .. 3) {
        my ($cx, $cy) = ($x0 + ($cell % 2) * $cw, $y0 + int($cell / 2) * $ch);
        my ($left, $top, $right, $bottom) = map { 8 + $rng->(25) } 1 .. 4;
        my $rect = { x => $cx + $left, y => $cy + $top, w => $cw - $left - $right, h => $ch - $top - $bottom,
            rgb => $colours[$cell] };
        $self->fill_rect(@$rect{qw(x y w h rgb)});
        push @solids, $rect;
    }
    return \@solids;
}

sub _draw_small_rects ($self, $rng, $x0, $y0, $w, $h) {
    my ($background, @palette) = _palette($rng, 9);
    $self->fill_rect($x0, $y0, $w, $h, $background);
    for (1 .. 300) {
        my ($rw, $rh) = (1 + $rng->(24), 1 + $rng->(24));
        $self->fill_rect($x0 + $rng->($w - $rw + 1), $y0 + $rng->($h - $rh + 1), $rw, $rh, $palette[$rng->(8)]);
    }
}

sub _draw_noise ($self, $rng, $x0, $y0, $w, $h) {
    my $rgb = pack 'C*', map { $rng->(256) } 1 .. $w * $h * 3;
    $self->put_rgb($x0, $y0, $w, $h, $rgb);
}

sub _draw_lines ($self, $rng, $x0, $y0, $w, $h) {
    my ($background, @palette) = _palette($rng, 7);
    $self->fill_rect($x0, $y0, $w, $h, $background);
    my $root = $self->{x}{root};
    for my $i (0 .. 59) {
        my @segment = $i < 20
          ? ($x0, $y0 + 4 + $i * int(($h - 8) / 20), $x0 + $w - 1, $y0 + 4 + $i * int(($h - 8) / 20))    # horizontal
          : $i < 30 ? do { my $lx = $x0 + 4 + ($i - 20) * int(($w - 8) / 10); ($lx, $y0, $lx, $y0 + $h - 1) }
          : ($x0 + $rng->($w), $y0 + $rng->($h), $x0 + $rng->($w), $y0 + $rng->($h));    # diagonal
        $self->_x(ChangeGC => $self->{gc}, foreground => $self->pixel(@{ $palette[$i % 6] }));
        $self->_x(PolySegment => $root, $self->{gc}, @segment);
    }
}

sub _draw_gradient ($self, $rng, $x0, $y0, $w, $h) {
    my $order = ([0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1])[ $rng->(4) ];    # which channel runs which way
    my $base = $rng->(128);
    my $rgb = '';
    for my $y (0 .. $h - 1) {
        my $gy = int($y * 255 / ($h - 1));
        $rgb .= pack 'C*', map {
            my @c = (int($_ * 255 / ($w - 1)), $gy, $base + int(($_ + $y) * 127 / ($w + $h - 2)));
            @c[@$order];
        } 0 .. $w - 1;
    }
    $self->put_rgb($x0, $y0, $w, $h, $rgb);
}

=head2 stop

Closes the X connection, stops the server (SIGTERM, bounded wait, SIGKILL) and reaps it. Idempotent; called
by DESTROY.

=cut

sub stop ($self) {
    return unless $$ == $self->{owner};
    if (my $x = delete $self->{x}) {
        eval { close $x->{connection}->fh };
    }
    stop_group(delete $self->{pid}, timeout => 10) if $self->{pid};
    return 1;
}

sub DESTROY ($self) {
    return unless ($self->{owner} // 0) == $$;
    local ($@, $?, $!);
    eval { $self->stop };
}

1;
