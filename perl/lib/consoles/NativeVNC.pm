package consoles::NativeVNC;

use v5.36;
use Time::HiRes ();

use NativeVNC;
use NativeVNC::Exception;
use NativeVNC::Socket;

our $VERSION = 'v0.1.0';

# Whether the framebuffer is a tinycv::Image (os-autoinst's image library) or a NativeVNC::Image. Decided on
# first use; tests may set it.
our $USE_TINYCV;

# The attributes of os-autoinst's consoles::VNC, plus `encodings` (ours). Accessors chain like Mojo::Base's:
# without an argument they get, with one they set and return the object.
my @ATTRIBUTES = qw(description hostname port username password name width height depth
  no_endian_conversion _pixinfo _colourmap _framebuffer _rfb_version screen_on
  _bpp _true_colour _do_endian_conversion absolute ikvm keymap _last_update_received
  _last_update_requested check_vnc_stalls _vnc_stalled vncinfo old_ikvm dell
  vmware_vnc_over_ws_url original_hostname jpeg encodings);

for my $name (@ATTRIBUTES) {
    no strict 'refs';
    *{$name} = sub ($self, @value) {
        return $self->{$name} unless @value;
        $self->{$name} = $value[0];
        return $self;
    };
}

use constant {
    ENCODING_ZRLE => 16,
    ENCODING_TIGHT => 7,
    ENCODING_JPEG_QUALITY_8 => -24,
    # The last os-autoinst test API interface version ($OpenQA::Isotovideo::Interface::version) whose
    # map_and_send_key delay is the pause after each key event (see _delay_per_event).
    LAST_INTERFACE_WITH_DELAY_PER_EVENT => 46,
};

sub new ($class, @args) {
    my %args = @args == 1 && ref $args[0] eq 'HASH' ? %{$args[0]} : @args;
    return bless \%args, $class;
}

sub _var ($name) { no warnings 'once'; $bmwqemu::vars{$name} }

sub _diag ($message) {
    return bmwqemu::diag($message) if defined &bmwqemu::diag;
    print STDERR "$message\n" if $ENV{NATIVEVNC_DEBUG};
}

sub _warn ($message) {
    return bmwqemu::fctwarn($message) if defined &bmwqemu::fctwarn;
    warn "$message\n";
}

# eval without os-autoinst's backend noticing: its backend process installs a __DIE__ handler that stops the
# VM on any die, even one caught here, so every expected failure is caught with the handler off, as
# os-autoinst's own consoles do. Returns what $code returns, in the caller's context, or nothing with $@ set.
sub _try ($code) {
    local $SIG{__DIE__} = undef;
    return eval { $code->() };
}

sub _throw ($kind, $message) { NativeVNC::Exception::class_for($kind)->throw(error => $message) }

sub _use_tinycv () {
    $USE_TINYCV //= _try(sub { require tinycv; 1 }) ? 1 : 0;
}

# The client of this process. One created before a fork belongs to the parent (the core knows which process
# created it); the child makes its own.
sub _client ($self) {
    my $client = $self->{_client};
    return $client if $client && $client->in_this_process;
    return $self->{_client} = NativeVNC::Client->new;
}

sub _open_client ($self) {
    my $client = $self->{_client};
    return $client if $client && $client->in_this_process;
    die "The VNC connection is not open (socket does not exist). Probably your backend instance could not start or died.\n";
}

sub _connected ($self) {
    my $client = $self->{_client};
    return $client && $client->in_this_process && $client->status->{connected};
}

# In a forked child the core only lets go of the parent's connection.
sub _disconnect ($self) {
    $self->{_client}->disconnect if $self->{_client};
    $self->{socket} = undef;
}

# os-autoinst closes the connection through the socket: socket(undef) and close($vnc->socket) both work.
sub socket ($self, @value) {
    return $self->{socket} unless @value;
    $self->_disconnect unless defined $value[0];
    $self->{socket} = $value[0];
    return $self;
}

# The encodings to offer: the `encodings` attribute, or the core's defaults adjusted for `dell` (no ZRLE,
# iDRAC's duplicates frames) and `jpeg` (Tight with JPEG quality 8 first), as os-autoinst does.
sub _encodings ($self) {
    return $self->encodings if $self->encodings;
    my @encodings = NativeVNC::default_encodings();
    @encodings = grep { $_ != ENCODING_ZRLE } @encodings if $self->dell;
    unshift @encodings, ENCODING_TIGHT, ENCODING_JPEG_QUALITY_8 if $self->jpeg;
    return \@encodings;
}

sub login ($self, $connect_timeout = undef, $timeout = undef) {
    _throw(VNCSetupError => 'consoles::NativeVNC does not support Supermicro iKVM (ikvm); use consoles::VNC')
      if $self->ikvm;
    $self->width(0);
    $self->height(0);
    $self->screen_on(1);
    $self->_last_update_received(0);
    $self->_last_update_requested(0);
    $self->_vnc_stalled(0);
    $self->check_vnc_stalls(1);

    my $webmks = $self->_webmks_options;
    my $defaults = NativeVNC::connect_defaults();
    my $hostname = $self->hostname || $defaults->{host};
    my $port = $self->port || $defaults->{port};
    $self->description('VNC over WebSockets server provided by VMWare') if $webmks;
    my $description = $self->description || 'VNC server';
    # os-autoinst's webmks path connects to its local bridge, so the local timeouts apply; so they do here.
    my $is_local = $webmks || $hostname =~ /\A(?:localhost|127\.0\.0\.\d+|::1)\z/;
    $connect_timeout //= $is_local ? _var('VNC_CONNECT_TIMEOUT_LOCAL') // 20 : _var('VNC_CONNECT_TIMEOUT_REMOTE') // 240;
    $timeout //= $is_local ? _var('VNC_TIMEOUT_LOCAL') // 60 : _var('VNC_TIMEOUT_REMOTE') // 60;
    my $connect_sleep = _var('VNC_CONNECT_SLEEP') // 1;

    my $client = $self->_client;
    $self->{socket} = undef;
    my %options = (
        host => $hostname,
        port => $port,
        password => $self->password,
        connect_timeout => $timeout,
        io_timeout => $timeout,
        # A webmks console asks for the VMware set (the core's default for it) unless told otherwise.
        encodings => $webmks && !$self->encodings ? undef : $self->_encodings,
        depth => $self->depth // 0,
        %{$webmks // {}},
    );
    my $target = $webmks ? $webmks->{target} : "$hostname:$port";
    my $error_connecting = "Error connecting to $description <$target>: ";
    # The core retries refused and timed-out connections; this hears of each failure it will retry.
    my $on_retry = sub ($e, $failures, $log) {
        _log_lines(@$log);
        my $message = $error_connecting . $e->message;
        if (!$webmks && (my $why = $self->_vsphere_without_vnc_server)) { _throw(VNCSetupError => "$message: $why") }
        # The server may simply not be up yet (qemu starting): the first failures are expected.
        _warn($message) if $failures > 2;
    };
    my $status = _try(sub { $client->connect_until(\%options, $connect_timeout, $connect_sleep, $on_retry) });
    if (!$status) {
        my $e = $@;
        $self->_flush_log;
        die $e unless ref $e && $e->isa('NativeVNC::Error');
        my $message = $error_connecting . $e->message;
        my $retryable = $e->kind eq 'connect' || $e->kind eq 'timeout';
        if ($retryable && !$webmks && (my $why = $self->_vsphere_without_vnc_server)) {
            _throw(VNCSetupError => "$message: $why");
        }
        _throw(VNCSetupError => $message);
    }
    $self->width($status->{width});
    $self->height($status->{height});
    $self->absolute($status->{absolute});
    $self->_rfb_version('003.00' . $status->{rfb_minor});
    $self->_bpp(32);
    $self->_true_colour(1);
    $self->_do_endian_conversion(0);
    $self->{socket} = NativeVNC::Socket->new($self);
    my $fb = $self->_framebuffer;
    $self->_framebuffer(undef) if $fb && ($fb->xres != $self->width || $fb->yres != $self->height);
    $self->_flush_log;
    return;
}

# The webmks connection options when this console is a VMware webmks console: given a
# `vmware_vnc_over_ws_url`, or deduced from the job's variables for the system under test as os-autoinst
# does (VMWARE_VNC_OVER_WS set and the console's host being VIRSH_GUEST). The password goes separately, so
# it needs no escaping in the URL. Every login takes a fresh ticket (the core does that on every connect).
sub _webmks_options ($self) {
    my ($url, $password) = ($self->vmware_vnc_over_ws_url);
    if (!$url) {
        return undef unless _var('VMWARE_VNC_OVER_WS');
        my $guest = _var('VIRSH_GUEST');
        return undef unless defined $guest && ($self->original_hostname // $self->hostname // '') eq $guest;
        my ($host, $user) = (_var('VMWARE_HOST'), _var('VMWARE_USERNAME') // 'root');
        $password = _var('VMWARE_PASSWORD');
        _throw(VNCSetupError => 'VMWARE_VNC_OVER_WS set but not VMWARE_HOST/VMWARE_PASSWORD')
          unless $host && defined $password;
        $url = "https://$user\@$host";
    }
    $self->original_hostname($self->hostname) unless defined $self->original_hostname;
    my ($api) = $url =~ m{\A(?:webmks\+)?https://(?:[^/\@]*\@)?([^/?#]+)};
    return {
        webmks_url => $url,
        target => 'webmks via ' . ($api // 'an invalid URL'),
        defined $password ? (webmks_password => $password) : (),
        vm => _var('VIRSH_VM_ID'),
        # Unset, the core's defaults apply: os-autoinst's 11 attempts, 5 s apart.
        ticket_attempts => $self->{_single_attempt} ? 0 : _var('VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS'),
        ticket_delay => _var('VMWARE_VNC_OVER_WS_REQUEST_DELAY'),
        insecure => _var('VMWARE_VNC_OVER_WS_INSECURE') // 0,
        ca_file => _var('VMWARE_VNC_OVER_WS_CA_FILE'),
        thumbprint => _var('VMWARE_VNC_OVER_WS_THUMBPRINT'),
        hosts => _var('VMWARE_VNC_OVER_WS_HOSTS'),
        api => _var('VMWARE_VNC_OVER_WS_API'),
    };
}

# Why the console of a VMware guest (its host is VIRSH_GUEST, VIRSH_VMM_FAMILY is vmware) can never connect
# over plain VNC: its vSphere host (VMWARE_HOST) is 7.0 or later, which has no VNC server. Asked once per
# console, on the first failed connection, without credentials; undef when the host has one or cannot tell.
sub _vsphere_without_vnc_server ($self) {
    return undef unless (_var('VIRSH_VMM_FAMILY') // '') eq 'vmware';
    my ($guest, $api) = (_var('VIRSH_GUEST'), _var('VMWARE_HOST'));
    return undef unless $api && defined $guest && ($self->original_hostname // $self->hostname // '') eq $guest;
    my $about = $self->{_vsphere_about} //= _try(sub { NativeVNC::vsphere_about($api, 10) }) // {};
    return undef unless ($about->{vnc_server} // '') eq '0';
    return "VMWARE_HOST $api runs $about->{full_name}, which has no VNC server (vSphere 7.0 removed it): "
      . 'set VMWARE_VNC_OVER_WS=1 to reach the console through a webmks ticket';
}

# Where the console connects, for log lines: HOST:PORT, or the vSphere API host of a webmks console.
sub target ($self) {
    my $webmks = _try(sub { $self->_webmks_options });
    return $webmks->{target} if $webmks;
    my $defaults = NativeVNC::connect_defaults();
    return ($self->hostname || $defaults->{host}) . ':' . ($self->port || $defaults->{port});
}

sub _flush_log ($self) {
    _log_lines($self->{_client}->take_log) if $self->{_client};
}

# The core's log lines ([$is_warning, $message]) to os-autoinst's log.
sub _log_lines (@lines) {
    for my $line (@lines) {
        my ($warning, $message) = @$line;
        $warning ? _warn($message) : _diag($message);
    }
}

sub _new_image ($self, $width, $height) {
    return NativeVNC::Image->new($width, $height) unless _use_tinycv();
    $self->vncinfo(tinycv::new_vncinfo(0, 1, 4, 255, 16, 255, 8, 255, 0)) unless $self->vncinfo;
    return tinycv::new($width, $height);
}

# Draws the updates whose pixels arrived into the framebuffer image, straight into its memory; returns how
# many updates completed. A new image is made for the first screen and after a resize, and becomes the
# framebuffer once something was drawn on it. A failure that may have left part of an update in the image
# drops the image, so that nobody sees it: the login that follows brings a whole new screen.
sub _draw ($self) {
    my $client = $self->_open_client;
    my $fb = $self->_framebuffer;
    for my $attempt (1 .. 3) {
        $fb //= $self->_new_image(@{$client->status}{qw(width height)});
        my $drawn = _try(sub { $self->_draw_into($client, $fb) });
        if (defined $drawn) {
            $self->_framebuffer($fb) if $drawn;
            return $drawn;
        }
        my $e = $@;
        # The screen was resized: draw on an image of the new size (the old one is untouched).
        if (ref $e && $e->isa('NativeVNC::Error') && $e->kind eq 'usage' && $attempt < 3) {
            $fb = undef;
            next;
        }
        $self->_framebuffer(undef) unless ref $e && $e->isa('NativeVNC::Error') && $e->kind eq 'usage';
        die $e;
    }
}

# An update whose pixels started to arrive gets this long to complete: os-autoinst's stall threshold.
sub _draw_timeout () { _var('VNC_STALL_THRESHOLD') // 4 }

sub _draw_into ($self, $client, $fb) {
    return $client->draw_image($fb, _draw_timeout) unless _use_tinycv();
    my $drawn = $client->draw_tinycv($fb, $fb->xres, $fb->yres, _draw_timeout);
    return $drawn if $drawn >= 0;
    # The image is not laid out as expected: draw on the client's own screen and copy through tinycv.
    unless ($self->{_map_raw_data_noted}++) {
        _diag('consoles::NativeVNC: unexpected tinycv image layout, copying screen updates with map_raw_data');
    }
    $drawn = $client->update(_draw_timeout);
    my $info = $self->vncinfo;
    $fb->map_raw_data($_->[4], @$_[0 .. 3], $info) for $client->take_damage;
    return $drawn;
}

# Collects what arrived since the last call; true if at least one framebuffer update did. A broken stream
# is logged and followed by a new login, as os-autoinst does; while stall detection is off
# (disable_vnc_stalls: the server may go away for a while, as in a reboot), by one connection attempt per
# VNC_CONNECT_SLEEP until the server is back, so the backend neither blocks nor dies meanwhile.
sub update_framebuffer ($self) {
    return 0 if $self->{_server_away} && !$self->_relogin_after_outage;
    my ($updates, $messages) = do {
        # _try's work without its closure: this runs on every poll of the capture loop.
        local $SIG{__DIE__} = undef;
        eval {
            my $client = $self->_open_client;
            my ($updates, $messages, $pending) = $client->poll;
            return ($updates, $messages) unless $pending;
            $self->_draw;
            my ($drawn, $started) = $client->poll;
            ($updates + $drawn, $messages + $started);
        };
    };
    if (my $e = $@) {
        die $e unless ref $e && $e->isa('NativeVNC::Error') && ($e->kind eq 'protocol' || $e->kind eq 'timeout');
        $self->_flush_log;
        if (!$self->check_vnc_stalls) {
            _warn('Error in VNC protocol - the server went away while stall detection is off; logging in again '
                  . 'once it is back: ' . $e->message);
            $self->_disconnect;
            my $now = Time::HiRes::time;
            $self->{_server_away} = {since => $now, next_try => $now};
            return 0;
        }
        _warn('Error in VNC protocol - relogin: ' . $e->message);
        $self->login;
        return 0;
    }
    $self->_vnc_stalled(0) if $messages;
    if ($updates) {
        $self->_last_update_received(Time::HiRes::time);
        my $status = $self->_open_client->status;
        $self->width($status->{width});
        $self->height($status->{height});
        $self->absolute($status->{absolute});
        # An update of pseudo-rectangles alone still means the screen exists (black until drawn), so that the
        # next request is incremental, as with consoles::VNC: TigerVNC answers every full request with the
        # screen's size alone.
        my $fb = $self->_framebuffer;
        $self->_framebuffer($self->_new_image($self->width, $self->height))
          unless $fb && $fb->xres == $self->width && $fb->yres == $self->height;
    }
    $self->_flush_log;
    return $updates ? 1 : 0;
}

# While the server is away: one connection attempt (one ticket request for webmks) if VNC_CONNECT_SLEEP has
# passed since the last; true once logged in again. Stall detection stays off, as the job asked.
sub _relogin_after_outage ($self) {
    my $away = $self->{_server_away};
    my $now = Time::HiRes::time;
    return 0 if $now < $away->{next_try};
    $away->{next_try} = $now + (_var('VNC_CONNECT_SLEEP') // 1);
    local $self->{_single_attempt} = 1;
    _try(sub { $self->login(0) });
    my $e = $@;
    $self->check_vnc_stalls(0);
    if ($e) {
        _diag('the VNC server is still away: ' . (ref $e && $e->can('error') ? $e->error : $e)) unless $away->{noted}++;
        return 0;
    }
    delete $self->{_server_away};
    _diag(sprintf('the VNC server is back after %.1f s: logged in again', Time::HiRes::time - $away->{since}));
    return 1;
}

sub _send_frame_buffer ($self, $args) {
    $self->_open_client->request_update($args->{incremental} ? 1 : 0, @{$args}{qw(x y width height)});
    return 1;
}

# A FramebufferUpdateRequest, with os-autoinst's stall detection: no update for 2 s brings a small forced
# update request, no update for VNC_STALL_THRESHOLD seconds after that a new login.
sub send_update_request ($self, $incremental = undef) {
    my $threshold = _var('VNC_STALL_THRESHOLD') // 4;
    my $since_last_update = Time::HiRes::time - ($self->_last_update_received // 0);
    if ($self->_framebuffer && $self->check_vnc_stalls) {
        if ($self->_vnc_stalled && $since_last_update > $threshold) {
            $self->_last_update_received(0);
            _diag(sprintf('considering VNC stalled, no update for %.2f seconds', $since_last_update));
            $self->_disconnect;
            return $self->login;
        }
        if ($since_last_update > 2) {
            $self->send_forced_update_request;
            $self->_vnc_stalled(1);
        }
    }
    $incremental = $self->_framebuffer && $self->_last_update_received ? 1 : 0 unless defined $incremental;
    return $self->_send_frame_buffer(
        {incremental => $incremental, x => 0, y => 0, width => $self->width, height => $self->height});
}

# A 16x16 non-incremental request: a live sign even when nothing on the screen changes.
sub send_forced_update_request ($self) {
    $self->_last_update_requested(Time::HiRes::time);
    return $self->_send_frame_buffer({incremental => 0, x => 0, y => 0, width => 16, height => 16});
}

sub _send_key_event ($self, $down_flag, $keysym) { $self->_open_client->key($keysym, $down_flag ? 1 : 0) }
sub send_key_event_down ($self, $keysym) { $self->_send_key_event(1, $keysym) }
sub send_key_event_up ($self, $keysym) { $self->_send_key_event(0, $keysym) }

# What the delay os-autoinst passes to map_and_send_key means changed with its commit 8601656a (November
# 2025): before, the pause after every press and after every release (video_base::type_string passes a quarter
# of a keypress's time); since, the time of the whole press and release (it passes half). os-autoinst has no
# release version, but its test API interface version tells: up to 46 the old meaning (46 also covers the
# three days after 8601656a, where the slower reading is the safe one), from 47 (abcaa66b) on the new one.
# Outside os-autoinst (no video_base loaded), or when the version cannot be read, the newer meaning holds.
sub _delay_per_event () {
    state $per_event = do {
        my $version;
        if ($INC{'consoles/video_base.pm'}) {
            _try(sub { require OpenQA::Isotovideo::Interface });
            no warnings 'once';
            $version = $OpenQA::Isotovideo::Interface::version;
        }
        defined $version && $version =~ /\A\d+\z/ && $version <= LAST_INTERFACE_WITH_DELAY_PER_EVENT ? 1 : 0;
    };
    return $per_event;
}

# Presses the keys of a chord in order, then releases them in reverse order. $down_flag undef: press and
# release; 1: press only; 0: release only. How long a press is held and the pause after a release come from
# the core (NativeVNC::chord_timing), as for the nativevnc program; a key takes as long as os-autoinst's own
# client takes for it, so TYPING_LIMIT keeps its meaning.
sub map_and_send_key ($self, $keys, $down_flag, $delay) {
    die "need delay" unless $delay;
    my @keysyms = _try(sub { NativeVNC::key_chord($keys) });
    die $@->message . "\n" if ref $@;
    die $@ if $@;
    my ($hold, $after_release) = NativeVNC::chord_timing(_delay_per_event() ? 2 * $delay : $delay);
    if (!defined $down_flag || $down_flag == 1) {
        for my $keysym (@keysyms) {
            $self->send_key_event_down($keysym);
            Time::HiRes::sleep($hold);
        }
    }
    if (!defined $down_flag || $down_flag == 0) {
        for my $keysym (reverse @keysyms) {
            $self->send_key_event_up($keysym);
            Time::HiRes::sleep($after_release);
        }
    }
    return;
}

sub shift_keys () {
    return {
        '~' => '`', '!' => '1', '@' => '2', '#' => '3', '$' => '4', '%' => '5', '^' => '6', '&' => '7', '*' => '8',
        '(' => '9', ')' => '0', '_' => 'minus', '+' => '=', '{' => '[', '}' => ']', '|' => '\\', ':' => ';',
        '"' => '\'', '<' => ',', '>' => '.', '?' => '/',
    };
}

sub die_on_invalid_mapping ($key) {
    die "No map for '$key' - layouts other than en-us are not supported\n";
}

# Fills `keymap` with os-autoinst's key names and their keysyms (a keysym, or [shift, keysym]).
sub init_x11_keymap ($self) {
    return if $self->keymap;
    $self->keymap(NativeVNC::key_map());
    return;
}

sub send_pointer_event ($self, $button_mask, $x, $y) {
    _diag("send_pointer_event $button_mask, $x, $y, " . ($self->absolute // 0));
    $self->_open_client->pointer($button_mask, $x, $y);
    return 1;
}

# Rectangles received per encoding number on the current connection: shows what the server really sends.
sub encoding_counts ($self) { $self->_open_client->encoding_counts }
sub counters ($self) { $self->_open_client->counters }

sub mouse_move_to ($self, $x, $y) { $self->send_pointer_event(0, $x, $y) }

sub mouse_click ($self, $x, $y) {
    $self->send_pointer_event(1, $x, $y);
    $self->send_pointer_event(0, $x, $y);
}

sub mouse_right_click ($self, $x, $y) {
    $self->send_pointer_event(4, $x, $y);
    $self->send_pointer_event(0, $x, $y);
}

1;

__END__

=head1 NAME

consoles::NativeVNC - drop-in replacement for os-autoinst's consoles::VNC, with a Rust core

=head1 SYNOPSIS

    use consoles::NativeVNC;

    my $vnc = consoles::NativeVNC->new({hostname => '127.0.0.1', port => 5901, password => $pw});
    $vnc->login;
    $vnc->send_update_request;
    $vnc->update_framebuffer;
    my $screen = $vnc->_framebuffer;              # a tinycv::Image inside os-autoinst
    $vnc->map_and_send_key('ctrl-alt-f2', undef, 1 / 30);
    $vnc->mouse_click(100, 200);

=head1 DESCRIPTION

An object with the interface and the semantics of os-autoinst's C<consoles::VNC>, so that
C<consoles::vnc_base> and the backends can use it in its place. The RFB protocol, decoding and the socket
live in the Rust core (L<NativeVNC>): a background thread keeps reading the server's messages, and
L</update_framebuffer> lends it the framebuffer image to decode the pixels of arrived updates straight
into, each update whole. The image is the console's only copy of the screen.

Differences from C<consoles::VNC> worth knowing:

=over

=item *

More encodings (Hextile, Zlib, CopyRect, RRE; Tight with C<jpeg>), and typing with scancodes where QEMU
offers extended key events, so that typing does not depend on the server's keymap.

=item *

A login failure is always an C<OpenQA::Exception::VNCSetupError> (C<consoles::VNC> dies with plain strings
for handshake and authentication errors), so C<select_console> reports it instead of killing the backend.
A server closing the connection is a protocol error followed by a new login (C<consoles::VNC> ignores
it until its stall detection fires).

=item *

Supermicro iKVM (C<ikvm>) is not supported. C<no_endian_conversion> has no effect: pixels are always
decoded in the format the server declares.

=back

=head1 ATTRIBUTES

C<description hostname port username password socket name width height depth no_endian_conversion
_framebuffer _rfb_version screen_on _bpp _true_colour _do_endian_conversion absolute ikvm keymap
_last_update_received _last_update_requested check_vnc_stalls _vnc_stalled vncinfo old_ikvm dell
vmware_vnc_over_ws_url original_hostname jpeg>, as in C<consoles::VNC>, and:

=over

=item encodings

An array reference of encoding numbers to offer, in order of preference, instead of the default list.

=back

=head2 socket

A L<NativeVNC::Socket> handle while connected: C<close($vnc-E<gt>socket)> and C<$vnc-E<gt>socket-E<gt>close>
close the connection; C<socket(undef)> does too.

=head1 METHODS

=head2 login($connect_timeout, $timeout)

Connects and logs in, retrying refused or timed-out connections every C<VNC_CONNECT_SLEEP> seconds (default
1) for C<$connect_timeout> seconds (default C<VNC_CONNECT_TIMEOUT_LOCAL> // 20 for localhost,
C<VNC_CONNECT_TIMEOUT_REMOTE> // 240 otherwise); warns C<Error connecting to DESCRIPTION E<lt>TARGETE<gt>: ...>
from the third failure on. The retry loop is the core's (L<NativeVNC/connect_until>), the one the
C<nativevnc> program uses too. C<$timeout> (default
C<VNC_TIMEOUT_LOCAL>/C<VNC_TIMEOUT_REMOTE> // 60) bounds one attempt and any stall in the middle of a
message later. Throws C<VNCSetupError> when the time is up or the server refuses the login.

The console of a VMware guest (C<VIRSH_VMM_FAMILY> C<vmware>, its host C<VIRSH_GUEST>) without
C<VMWARE_VNC_OVER_WS> fails at the first refused connection when C<VMWARE_HOST> says (asked once, without
credentials) that it runs vSphere 7.0 or later, which has no VNC server: the error names the host's version
and says to set C<VMWARE_VNC_OVER_WS=1>.

=head2 update_framebuffer

Collects what arrived, drawing the updates whose pixels arrived into the framebuffer image (an update
whose pixels started to arrive gets C<VNC_STALL_THRESHOLD> seconds, default 4, to complete; one that does
not is a broken stream, and the image, which may hold part of it, is dropped until the next login brings
a whole screen); returns true if a framebuffer update completed. On a broken stream logs
C<Error in VNC protocol - relogin: ...> and logs in again. While C<check_vnc_stalls> is off
(C<disable_vnc_stalls>, around reboots), a broken stream means the server went away for a while: it is
logged once, and each later call makes one connection attempt per C<VNC_CONNECT_SLEEP> seconds (one ticket
request for webmks) until the server is back, so the capture loop neither blocks nor dies meanwhile; stall
detection stays off. Keys sent meanwhile are delivered once the console is connected again.

=head2 send_update_request($incremental)

Requests an update of the whole screen (incremental unless there is no screen yet), with os-autoinst's
stall detection while C<check_vnc_stalls> is true: after 2 s without an update a forced 16x16 request,
after C<VNC_STALL_THRESHOLD> (default 4) more seconds a new login.

=head2 send_forced_update_request

A non-incremental request for the top-left 16x16 pixels.

=head2 map_and_send_key($keys, $down_flag, $delay)

Sends a key chord such as C<ctrl-alt-f2> with os-autoinst's key names: presses in order, releases in
reverse. C<$down_flag> undef presses and releases, 1 only presses, 0 only releases. Dies for unknown keys
with C<No map for 'KEY': >, as os-autoinst's message begins, and what would work instead (the nearest key
name and the list of names, or for a character, that only what a US keyboard types is supported).

Each key takes the time os-autoinst's own client gives it, so that C<TYPING_LIMIT> (keys per second) holds.
What C<$delay> means changed with os-autoinst's commit 8601656a (November 2025): before, C<video_base>
passed a quarter of a keypress's time, the pause after each press and after each release, so a key takes
twice C<$delay>; since, it passes half, the time of the whole key, so a key takes C<$delay>. os-autoinst has
no release version to tell them apart; its test API interface version
(C<$OpenQA::Isotovideo::Interface::version>, which isotovideo reports to openQA) does: 46 and older
(the Debian package 4.6.1731418769 has 42) mean twice C<$delay>; 47 (commit abcaa66b, three days after
8601656a) and newer mean C<$delay>. Version 46 spans both; there the slower reading is taken, which never
types faster than C<TYPING_LIMIT>. Outside os-autoinst (no C<consoles::video_base> loaded) a key takes
C<$delay>.

The press is held for half the key's time, at most 8 ms, and the rest follows the release, so that slow
typing does not make the guest repeat keys: L<NativeVNC/chord_timing>, the timing the C<nativevnc>
program uses too.

=head2 send_key_event_down($keysym), send_key_event_up($keysym)

One key event.

=head2 send_pointer_event($button_mask, $x, $y), mouse_move_to($x, $y), mouse_click($x, $y), mouse_right_click($x, $y)

Pointer events in framebuffer coordinates.

=head2 target

Where the console connects, for log lines: C<HOST:PORT>, or C<webmks via API-HOST> for a webmks console.

=head2 encoding_counts

A hash reference of encoding number to rectangles received in it on the current connection.

=head2 counters

What the current connection received so far, as L<NativeVNC/counters> says (C<messages>, C<updates>,
C<pixel_updates>, C<pixels>).

=head2 send_key_event_down, send_key_event_up, init_x11_keymap, shift_keys, die_on_invalid_mapping

As in C<consoles::VNC>.

=head1 VMWARE WEBMKS

The console connects to a vSphere VM's webmks console, in-process, when it has a C<vmware_vnc_over_ws_url>
(C<https://USER:PASSWORD@HOST[:PORT]/VM-ID>, or C<?name=>, C<?path=>, C<?uuid=> instead of the id), or when
C<VMWARE_VNC_OVER_WS> is set and its host (C<original_hostname> or C<hostname>) is C<VIRSH_GUEST>; then the
API is C<VMWARE_HOST> as C<VMWARE_USERNAME> (root) with C<VMWARE_PASSWORD>, and the VM C<VIRSH_VM_ID>. Every
login takes a fresh ticket; the local timeouts apply, as for os-autoinst's bridge. The ticket comes from
the SOAP API, or from vCenter's REST API (C<VMWARE_VNC_OVER_WS_API=rest>; the default, C<auto>, uses REST
only where the endpoint has no SOAP API); through REST the VM is given by its id or C<?name=>.

A ticket names the ESXi host to connect to, often by a name only the vSphere side can resolve.
C<VMWARE_VNC_OVER_WS_HOSTS> (C<esx1.example.com=10.0.0.5,...>) maps such names to addresses. Without a
mapping, a name that does not resolve is replaced by C<VMWARE_HOST>'s address when the console is pinned to the
ticket's thumbprints (the usual case) or C<VMWARE_VNC_OVER_WS_INSECURE> is set; the log says so. Otherwise
the login fails with a message naming C<VMWARE_VNC_OVER_WS_HOSTS>.

=head1 VARIABLES

Read from C<%bmwqemu::vars>: C<VIRSH_VMM_FAMILY>, C<VNC_CONNECT_TIMEOUT_LOCAL>, C<VNC_CONNECT_TIMEOUT_REMOTE>,
C<VNC_TIMEOUT_LOCAL>, C<VNC_TIMEOUT_REMOTE>, C<VNC_CONNECT_SLEEP>, C<VNC_STALL_THRESHOLD>, and for webmks
C<VMWARE_VNC_OVER_WS>, C<VMWARE_HOST>, C<VMWARE_USERNAME>, C<VMWARE_PASSWORD>, C<VIRSH_GUEST>, C<VIRSH_VM_ID>,
C<VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS>, C<VMWARE_VNC_OVER_WS_REQUEST_DELAY>, C<VMWARE_VNC_OVER_WS_INSECURE>,
with os-autoinst's meanings and defaults, and this module's own C<VMWARE_VNC_OVER_WS_CA_FILE> (extra trusted
CA certificates, PEM), C<VMWARE_VNC_OVER_WS_THUMBPRINT> (the API certificate's SHA-1 or SHA-256
thumbprints, comma-separated, pinned), C<VMWARE_VNC_OVER_WS_HOSTS> (C<NAME=ADDRESS,...>: addresses for
tickets' hosts, see L</VMWARE WEBMKS>) and C<VMWARE_VNC_OVER_WS_API> (C<soap>, C<rest> or C<auto>, the
default: the API that gives tickets).

=cut
