package NativeVNC::Image;

use v5.36;

our $VERSION = 'v0.1.0';

require NativeVNC;

1;

__END__

=head1 NAME

NativeVNC::Image - the screen image used when os-autoinst's tinycv is not available

=head1 SYNOPSIS

    my $img = NativeVNC::Image->new(1024, 768);
    $img->blit($x, $y, $w, $h, $pixels);
    my ($b, $g, $r) = $img->get_pixel(10, 20);
    $img->write('screen.png');

=head1 METHODS

=head2 new($width, $height)

A black image.

=head2 xres, yres

Width and height.

=head2 get_pixel($x, $y)

C<($blue, $green, $red)>, the order tinycv uses. Dies outside the image.

=head2 blit($x, $y, $w, $h, $pixels)

Copies C<$w * $h> pixels of 4 bytes (blue, green, red, 0), as L<NativeVNC/take_damage> returns them,
into the rectangle. Dies if the rectangle does not fit or the data has the wrong length.

=head2 write($file)

Writes the image as PNG, or as PPM when C<$file> ends in C<.ppm>. Dies on failure.

=cut
