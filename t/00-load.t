#!/usr/bin/perl
# The modules load, document themselves, and the key names map exactly as os-autoinst maps them.
use v5.36;
use Test::More;
use Test::Pod;

use NativeVNC;
use consoles::NativeVNC;

pod_file_ok($_) for all_pod_files('perl/lib');

is_deeply([NativeVNC::key_chord('ctrl-alt-f2')], [0xffe3, 0xffe9, 0xffbf], 'chord keysyms in press order');
is_deeply([NativeVNC::key_chord('A')], [0xffe1, 0x41], 'upper case letters come with shift');
is_deeply([NativeVNC::key_chord('@')], [0xffe1, 0x40], 'shifted punctuation: shift plus its own keysym');
is_deeply([NativeVNC::key_chord('minus')], [0x2d], 'minus by name');
is_deeply([NativeVNC::key_chord('altgr')], [0xffea], 'altgr');

my $e = eval { NativeVNC::key_chord('ctrl-nosuchkey'); 1 } ? undef : $@;
isa_ok($e, 'NativeVNC::Error', 'an unknown key name');
is($e->kind, 'usage', '... is a usage error');
like("$e", qr/^No map for 'nosuchkey': not a key name; key names are esc, .*, f1 to f12, /,
    '... beginning as os-autoinst\'s message, then listing the key names');

my $map = NativeVNC::key_map();
is($map->{ret}, 0xff0d, 'key_map: ret');
is_deeply($map->{'~'}, [0xffe1, 0x7e], 'key_map: ~ is shift and asciitilde');
is($map->{f12}, 0xffc9, 'key_map: f12');

my @default = NativeVNC::default_encodings();
is($default[0], 16, 'ZRLE is preferred by default, as in os-autoinst');
ok((grep { $_ == 0 } @default) && (grep { $_ == -223 } @default), 'Raw and DesktopSize are offered');

my $vnc = consoles::NativeVNC->new({hostname => 'example.org', port => 5901, password => 'x'});
is($vnc->hostname, 'example.org', 'constructor takes a hash reference');
is($vnc->port(5902), $vnc, 'setters chain');
is(consoles::NativeVNC->new(hostname => 'h')->hostname, 'h', 'constructor takes a list');
is_deeply($vnc->_encodings, [@default], 'default encodings');
is_deeply($vnc->dell(1)->_encodings, [grep { $_ != 16 } @default], 'dell drops ZRLE');
is_deeply($vnc->dell(0)->jpeg(1)->_encodings, [7, -24, @default], 'jpeg puts Tight with JPEG quality 8 first');
like(
    (eval { $vnc->update_framebuffer; 1 } ? '' : $@),
    qr/The VNC connection is not open/,
    'using the object before login says so'
);

$vnc->init_x11_keymap;
is_deeply($vnc->keymap->{A}, [0xffe1, 0x41], 'init_x11_keymap fills keymap like os-autoinst');

done_testing;
