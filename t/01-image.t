#!/usr/bin/perl
# NativeVNC::Image, the screen object used without os-autoinst's tinycv: pixels in, pixels out, PNG and PPM
# files that other readers agree with.
use v5.36;
use Test::More;
use File::Temp 'tempdir';

use lib 't/lib';
use NativeVNC;
use NativeVNC::Test::Util qw(slurp_or_die);

my $img = NativeVNC::Image->new(4, 3);
is($img->xres, 4, 'xres');
is($img->yres, 3, 'yres');
is_deeply([$img->get_pixel(3, 2)], [0, 0, 0], 'a new image is black');

# Two pixels of B,G,R,0: red-ish and green-ish, at (1,1) and (2,1).
$img->blit(1, 1, 2, 1, pack('C8', 0x10, 0x20, 0xf0, 0, 0x05, 0xe0, 0x30, 0));
is_deeply([$img->get_pixel(1, 1)], [0x10, 0x20, 0xf0], 'get_pixel returns blue, green, red like tinycv');
is_deeply([$img->get_pixel(2, 1)], [0x05, 0xe0, 0x30], 'second pixel');
is_deeply([$img->get_pixel(0, 1)], [0, 0, 0], 'pixels outside the rectangle untouched');

like((eval { $img->blit(3, 2, 2, 1, "\0" x 8); 1 } ? '' : $@), qr/does not fit the 4x3 image/, 'blit outside dies');
like((eval { $img->blit(0, 0, 2, 1, "\0" x 7); 1 } ? '' : $@), qr/7 bytes of pixel data/, 'blit with short data dies');
like((eval { $img->get_pixel(4, 0); 1 } ? '' : $@), qr/outside the image/, 'get_pixel outside dies');
like((eval { NativeVNC::Image->new(60000, 60000); 1 } ? '' : $@), qr/larger than/, 'absurd sizes are refused');

my $dir = tempdir(CLEANUP => 1);
ok($img->write("$dir/a.ppm"), 'write PPM');
my $ppm = slurp_or_die("$dir/a.ppm");
is(substr($ppm, 0, 11), "P6\n4 3\n255\n", 'PPM header');
is(substr($ppm, 11 + (1 * 4 + 1) * 3, 6), pack('C6', 0xf0, 0x20, 0x10, 0x30, 0xe0, 0x05), 'PPM pixels are R,G,B');

ok($img->write("$dir/a.png"), 'write PNG');
# Without netpbm: the file itself (its signature is checked here, tinycv reads it back below).
my $png = `pngtopnm $dir/a.png 2>/dev/null` || slurp_or_die("$dir/a.png");
like($png, qr/\A(?:\x89PNG|P6)/, 'PNG file written');

subtest 'tinycv reads our PNG back' => sub {
    local @INC = ('/usr/lib/os-autoinst', @INC);
    require bmwqemu;
    require cv;
    cv::init();
    require tinycv;
    my $back = tinycv::read("$dir/a.png");
    is($back->xres, 4, 'width');
    is_deeply([$back->get_pixel(1, 1)], [0x10, 0x20, 0xf0], 'pixel as written');
};

like((eval { $img->write("$dir/no/such/dir/x.png"); 1 } ? '' : $@), qr/cannot create/, 'write to a bad path dies');

done_testing;
