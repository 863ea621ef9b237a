package NativeVNC;

use v5.36;

our $VERSION = 'v0.1.0';

require XSLoader;
XSLoader::load('NativeVNC', $VERSION);

# The XS packages booted above check their own $VERSION against the module's.
$NativeVNC::Client::VERSION = $NativeVNC::Image::VERSION = $VERSION;

require NativeVNC::Error;
require NativeVNC::Image;

1;

__END__

=head1 NAME

NativeVNC - a VNC client with a Rust core: the low-level session API

=head1 SYNOPSIS

    use NativeVNC;

    my $client = NativeVNC::Client->new;
    my $status = $client->connect({host => '127.0.0.1', port => 5901, password => 'secret'});
    $client->request_update(0);
    $client->wait_update(5) or die 'no screen update within 5 s';
    my ($updates, $messages) = $client->poll;
    for my $rect ($client->take_damage) {
        my ($x, $y, $w, $h, $pixels) = @$rect;    # B,G,R,0 per pixel
    }
    $client->key($_, 1) for NativeVNC::key_chord('ctrl-alt-f2');
    $client->snapshot->write('screen.png');

=head1 DESCRIPTION

This is the thin layer over the Rust core. Most users want L<consoles::NativeVNC>, the drop-in
replacement for os-autoinst's C<consoles::VNC> built on it.

A connection runs in a background thread of the core that reads whatever the server sends and handles its
messages; calls from Perl collect what arrived, queue input, or wait with a timeout. The pixels of a
framebuffer update are the exception: they wait in the socket until the caller lends an image to draw them
on (L</draw_tinycv>, L</draw_image>, or the client's own screen through L</update> and L</wait_update>).
The core then decodes them straight into that image while the call waits, each update whole: a caller
never sees half an update, and a console keeps one screen, its own image, and no copy of it.

Every failure dies with a L<NativeVNC::Error> object that has a C<kind> (C<connect>, C<auth>,
C<protocol>, C<timeout>, C<usage>, C<internal>, C<setup>) and a C<message>. Messages never contain the password.

A client created before C<fork> belongs to the parent (the core records the process that created it):
in the child L</in_this_process> is false, every call that uses the connection fails with a C<usage>
error, and C<disconnect> only lets go of the parent's connection; create a new client there.

=head1 FUNCTIONS

=head2 key_chord($keys)

The X11 keysyms of an os-autoinst key chord (C<ctrl-alt-f2>, C<ret>, C<A>, C<@>) in press order, exactly
as os-autoinst's C<consoles::VNC> maps them (shifted characters are preceded by shift). Dies for unknown
names with C<No map for 'KEY': >, as os-autoinst's message begins, and what would work instead (the nearest
key name and the list of names, or for a character, that only what a US keyboard types is supported).

=head2 chord_timing($key_time)

C<($hold, $after_release)>: for a key of a chord that takes C<$key_time> seconds, how long each press is
held (half the time, at most 8 ms, so that a guest does not repeat keys) and the pause after each release
(the rest), in seconds. os-autoinst's C<map_and_send_key> timing since its commit 8601656a; the
C<nativevnc> program's too.

=head2 key_map

os-autoinst's C<keymap> hash as its C<init_x11_keymap> builds it: key name to keysym, or to
C<[shift, keysym]>.

=head2 default_encodings

The encoding numbers offered when none are given, in order of preference.

=head2 connect_defaults

The defaults of L</connect(\%options)>, from the core, which owns them: a hash reference with C<host>,
C<port>, C<connect_timeout>, C<io_timeout>, C<shared>, C<scancode_keys>, C<ticket_attempts> and
C<ticket_delay> (seconds).

=head2 vsphere_about($host, $timeout)

What the vSphere API at C<$host> (C<HOST> or C<HOST:PORT>, port 443 by default) is, asked with
RetrieveServiceContent, which needs no login: a hash reference with C<full_name> (C<VMware ESXi 7.0.3
build-...>), C<version>, C<api_version>, C<api_type> (C<HostAgent> or C<VirtualCenter>),
C<product_line_id> and C<vnc_server> (1 when its hosts still have ESXi's built-in VNC server, that is
before vSphere 7.0; 0 when not; empty when the version cannot be read). No credentials are sent and the
certificate is not verified. Dies with a L<NativeVNC::Error> (C<connect>, C<timeout>, C<setup>) when the
API cannot be asked within C<$timeout> seconds.

=head1 NativeVNC::Client METHODS

=head2 new

A client without a connection.

=head2 connect(\%options)

Connects and runs the RFB handshake, blocking for at most C<connect_timeout> seconds (plus, for a webmks
console, the time the ticket takes); returns the status (see L</status>). Closes any previous connection of
this client. Options:

=over

=item host, port

Server address (default localhost:5900).

=item password

For VNC authentication; the server's choice of security type decides whether it is used.

=item connect_timeout

Seconds allowed for the TCP connection and the handshake (default 20).

=item io_timeout

Seconds a half-received message or a write may stall before the connection counts as broken (default 60).

=item encodings

Array reference of encoding numbers in order of preference (default: ZRLE, Hextile, Zlib, CopyRect, RRE,
Raw and the pseudo-encodings DesktopSize, ExtendedDesktopSize, LastRect, QEMU pointer type, QEMU LED
state, QEMU extended key event).

=item depth

0 (default) asks the server for 32-bit true colour; 8, 15, 16, 24 or 32 ask for os-autoinst's pixel
format of that depth.

=item keep_server_format

True: send no SetPixelFormat and decode the server's own format.

=item shared

ClientInit's shared flag (default true).

=item scancode_keys

Type with scancodes (QEMU extended key events, VMware key events) when the server offers them (default
true).

=item webmks_url

Connect to a vSphere VM's webmks console instead of C<host>:C<port>: os-autoinst's
C<https://USER:PASSWORD@HOST[:PORT]/VM-ID>, or C<?name=NAME>, C<?path=INVENTORY/PATH>, C<?uuid=BIOS-UUID> in
place of the VM id. Every connect acquires a fresh ticket. The encodings default to the VMware set (TightPNG,
CopyRect, Raw, DesktopSize and the VMware pseudo-encodings) and the server's pixel format is kept.

=item vm, webmks_password

The VM id when the URL names none; a password that replaces the URL's (no escaping needed).

=item ticket_attempts, ticket_delay

Failed ticket requests retried (default 11, as os-autoinst's C<VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS>; wrong
credentials never are) and seconds between them (5). The same names as the core's and the C<nativevnc>
program's C<--ticket-attempts> and C<--ticket-delay>.

=item insecure, ca_file, thumbprint

TLS: verify nothing; trust the CA certificates in this PEM file besides the system's; pin the vSphere API's
certificate by its SHA-1 or SHA-256 thumbprints (comma-separated, any of them matches). The console's
connection is pinned to the thumbprints the ticket carries; a ticket without any (every REST ticket) is
verified like the API.

=item api

The vSphere API that gives tickets: C<soap> (ESXi, vCenter), C<rest> (vCenter's REST console tickets, 7.0
and later), or C<auto> (the default: SOAP, and REST where the endpoint has no SOAP API).

=item hosts

C<NAME=ADDRESS,...>: connect to ADDRESS (an IP address or a host name, no port) when a ticket names the host
NAME; the TLS server name and the C<Host:> header stay NAME. Without a mapping, a ticket's host that does not
resolve is replaced by the vSphere API's host when the console is pinned to the ticket's thumbprints or
C<insecure> is set (the log says so); with CA verification the connection fails with an error naming
C<VMWARE_VNC_OVER_WS_HOSTS>.

=back

=head2 connect_until(\%options, $window, $pause, $on_retry)

L</connect(\%options)>, tried again every C<$pause> seconds while attempts are refused or time out, until
C<$window> seconds have passed (0: one attempt); every attempt has the whole C<connect_timeout>. No attempt
starts after the window; the last one's error is thrown. Before every new attempt,
C<< $on_retry->($error, $failures, \@log) >> hears of the failure: the L<NativeVNC::Error>, the failed
attempts so far, and what the failed attempt logged (lines as L</take_log> gives them). If it dies, the
loop ends and its exception is thrown. It must not use the client. What the last attempt logged stays for
L</take_log>. This is the retry loop of L<consoles::NativeVNC/login> and of the C<nativevnc> program.

=head2 in_this_process

True if this process created the client; false in a child forked after that.

=head2 disconnect

Closes the connection. Input queued but not sent yet is kept for the next connection.

=head2 status

A hash reference: C<connected>, C<rfb_minor> (the RFB version spoken is 3.C<rfb_minor>), C<width>, C<height>, C<absolute> (the server reported an absolute
pointer), C<scancodes> (keys are sent as scancodes).

=head2 counters

A hash reference: what the current connection received so far. C<messages> (server messages started),
C<updates> (framebuffer updates completed), C<pixel_updates> (completed updates that carried pixels, not only
pseudo-encodings) and C<pixels> (pixels of the complete pixel rectangles: a full-screen frame adds the screen's
width times its height).

=head2 poll

C<($updates, $messages, $pending)>: framebuffer updates completed and server messages started since the
previous poll, and whether the pixels of an update wait to be drawn (L</draw_tinycv>). Dies with the
connection's error (kind C<protocol> or C<timeout>) once it has broken and no update is left to report.

=head2 draw_tinycv($image, $width, $height, $seconds)

Draws the framebuffer updates whose pixels arrived straight into a C<tinycv::Image> of C<$width> x
C<$height> (the screen's size), one after another and each whole, and returns how many updates completed
(0 at once when none waits). While an update is not all there yet, the connection reads the rest for up to
C<$seconds>. The image's OpenCV matrix is checked field by field first (magic value, type, size as tinycv
reports it, consistent pointers and row step); if anything differs from the expected layout, nothing is
drawn and it returns -1, so that the caller can use L</update> and L</take_damage> with tinycv's
C<map_raw_data> instead.

Dies (kind C<usage>, image untouched) if the screen no longer has that size: make an image of the new
size (L</status>) and call again. Any other failure ends the connection, and the image may then hold part
of an update: do not show it.

=head2 draw_image($image, $seconds)

The same for a L<NativeVNC::Image> of the screen's size.

=head2 update($seconds)

The same onto the client's own screen, which the client makes (black) in the screen's size on first use
and after a resize; it is what L</take_damage> and L</snapshot> read. A console draws on its own image
instead and keeps no such copy.

=head2 wait_update($seconds)

Waits up to C<$seconds> for a framebuffer update that carries pixels (servers also send updates with only
pseudo-encodings, e.g. right after SetEncodings) and completed after the connect, the last L</poll> or the
last successful C<wait_update>, drawing onto the client's own screen meanwhile (L</update>; an update
whose pixels started to arrive gets up to 2 s more to complete); true if there is one.

=head2 take_damage

The rectangles of the client's own screen drawn since the last call, each C<[$x, $y, $w, $h, $pixels]>,
C<$pixels> holding C<$w * $h> pixels of 4 bytes (blue, green, red, 0), row after row. This is the format
C<< tinycv::new_vncinfo(0, 1, 4, 255, 16, 255, 8, 255, 0) >> describes.

=head2 key($keysym, $down)

Queues a key event. With a server that accepts QEMU extended key events, it carries the key's US
scancode.

=head2 pointer($buttons, $x, $y)

Queues a pointer event (coordinates clamped to 0..65535).

=head2 request_update($incremental, $x, $y, $w, $h)

Queues a FramebufferUpdateRequest; without a rectangle, for the whole screen.

=head2 take_log

Log lines the connection produced since the last call, each C<[$is_warning, $message]>.

=head2 snapshot

A L<NativeVNC::Image> copy of the client's own screen (L</update>); dies if it has none yet.

=head2 encoding_counts

A hash reference: encoding number to the number of rectangles received in it on the current connection
(pseudo-encodings included). Shows which encodings the server really uses.

=head1 SEE ALSO

L<consoles::NativeVNC>, L<NativeVNC::Image>, L<NativeVNC::Error>.

=cut
