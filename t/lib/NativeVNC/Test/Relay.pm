package NativeVNC::Test::Relay;

use v5.36;
use Carp 'croak';
use File::Temp 'tempdir';
use IO::Select;
use IO::Socket::UNIX;
use Socket 'SOCK_STREAM';

use NativeVNC::Test::Util qw(repo_root free_tcp_port spawn_group stop_group wait_until);

# A relay to $host:$port on a free port, or on port `listen` (e.g. a stopped relay's, to bring it back).
sub start ($class, $host, $port, %opt) {
    my $tmp = tempdir('nativevnc-relay-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $listen = $opt{listen} // free_tcp_port();
    my $log = "$tmp/relay.log";
    my $control = "$tmp/control.sock";
    my $pid = spawn_group([$^X, repo_root() . '/t/bin/relay', $listen, $host, $port, $control], log => $log);
    my $self = bless {pid => $pid, port => $listen, log => $log, control => $control, tmp => $tmp, owner => $$,
        injections => 0}, $class;
    wait_until(10, 'the relay listening', sub { $self->_log =~ /^listening$/m });
    return $self;
}

sub _log ($self) {
    open my $fh, '<', $self->{log} or return '';
    local $/;
    return <$fh> // '';
}

# Sends one command line and returns the number of connections it acted on.
sub _command ($self, @words) {
    croak 'the relay is not running' unless $self->{pid};
    my $line = join ' ', @words;
    my $socket = IO::Socket::UNIX->new(Peer => $self->{control}, Type => SOCK_STREAM)
      or croak "relay control socket: $!";
    print {$socket} "$line\n";
    $socket->flush;
    my $answer = IO::Select->new($socket)->can_read(10) ? <$socket> : undef;
    croak "relay: no answer to '$line' within 10 s" unless defined $answer;
    chomp $answer;
    croak "relay: $line: $1" if $answer =~ /^error (.*)/;
    $answer =~ /^ok (\d+)$/ or croak "relay: unexpected answer '$answer' to '$line'";
    return $1;
}

sub host ($self) { '127.0.0.1' }
sub port ($self) { $self->{port} }
sub connections ($self) { scalar(() = $self->_log =~ /^connection \d+$/mg) }
sub freeze ($self) { $self->_command('freeze') }
sub thaw ($self) { $self->_command('thaw') }
sub drop ($self) { $self->_command('drop') }
sub reset ($self) { $self->_command('reset') }
sub half_open ($self) { $self->_command('half_open') }

sub trickle ($self, $bytes_per_second) {
    croak 'trickle needs a positive whole number of bytes per second' unless $bytes_per_second =~ /^[1-9]\d*$/;
    return $self->_command(trickle => $bytes_per_second);
}

sub cut_after ($self, $bytes) {
    croak 'cut_after needs a whole number of bytes' unless $bytes =~ /^\d+$/;
    return $self->_command(cut_after => $bytes);
}

sub inject ($self, $bytes, %opt) {
    croak 'inject needs bytes' unless length $bytes;
    my $file = "$self->{tmp}/inject-" . ++$self->{injections};
    open my $fh, '>:raw', $file or croak "$file: $!";
    print {$fh} $bytes;
    close $fh or croak "$file: $!";
    my $repeat = $opt{repeat} // 1;
    croak 'inject: repeat must be a whole number' unless $repeat =~ /^\d+$/;
    $self->_command(inject => $file, $repeat, $opt{then} // 'hold');
    return;
}

sub injected ($self, $connection) { $self->_log =~ /^connection \Q$connection\E injected$/m ? 1 : 0 }
sub closed ($self, $connection) { $self->_log =~ /^connection \Q$connection\E (?:closed|cut)$/m ? 1 : 0 }

sub key_events ($self, $connection = undef) {
    my @keys;
    for my $line (split /\n/, $self->_log) {
        my ($id, $keysym, $down) = $line =~ /^connection (\d+) key 0x([0-9a-f]+) (down|up)$/ or next;
        push @keys, [hex $keysym, $down eq 'down' ? 1 : 0] if !defined $connection || $id == $connection;
    }
    return @keys;
}

sub stop ($self) {
    return unless $self->{pid} && $self->{owner} == $$;
    stop_group(delete $self->{pid});
}

sub DESTROY ($self) { $self->stop }

1;

__END__

=head1 NAME

NativeVNC::Test::Relay - a fault-injecting TCP relay between a client and a real server: stalls, half-open
connections, resets, slow or cut streams, and crafted RFB server bytes

=head1 SYNOPSIS

    my $relay = NativeVNC::Test::Relay->start($guest->vnc_host, $guest->vnc_port);
    # connect the client to $relay->host, $relay->port
    $relay->freeze;            # the server stops sending on the open connections
    $relay->thaw;
    $relay->drop;              # the open connections are closed (FIN)
    $relay->reset;             # ... or reset (RST)
    $relay->half_open;         # nothing more moves either way, the sockets stay open
    $relay->trickle(1);        # the server's bytes arrive at one byte a second
    $relay->cut_after(4096);   # 4096 more server bytes, then the connections are closed
    $relay->inject($bytes, repeat => 5000, then => 'hold');   # crafted server bytes on the next connection
    $relay->connections;       # how many were accepted so far
    $relay->key_events(2);         # the key events connection 2's client sent: ([keysym, down], ...)

=head1 DESCRIPTION

Runs C<t/bin/relay> in its own process group (stopped with the test), listening on 127.0.0.1. Every accepted
connection is relayed to the target; connections are numbered from 1 in the order they are accepted. The
methods talk to the relay through a Unix control socket and return once the relay has acted, with the number
of connections acted on.

The transport faults (C<freeze>, C<half_open>, C<thaw>, C<drop>, C<reset>, C<trickle>, C<cut_after>) act on
the connections open when they are called, know nothing of the protocol and work on any TCP stream (RFB,
TLS, WebSocket); connections accepted later are relayed normally. C<inject> knows RFB.

=head1 METHODS

=head2 start($host, $port, %opt)

Starts a relay to C<$host:$port> on a free port, or on port C<listen> (e.g. a stopped relay's, to bring it
back); returns once it listens.

=head2 host, port

Where the relay listens.

=head2 connections

How many connections were accepted so far.

=head2 freeze, thaw

C<freeze>: nothing more goes from the server to the client (a stalled server); the client's bytes still go to
the server. C<thaw>: frozen and half-open connections go on.

=head2 half_open

Nothing more is read or written either way and the sockets stay open, without FIN or RST: a peer that
vanished (a cable pulled, a host that froze). The client's writes are taken by its kernel until the buffers
are full.

=head2 drop

Closes the open connections normally (FIN both ways).

=head2 reset

Closes the open connections with a TCP reset (SO_LINGER 0): the client's next read or write fails with
"Connection reset by peer".

=head2 trickle($bytes_per_second)

From now on the server's bytes reach the client at C<$bytes_per_second> (a whole number, at least 1); the
client's bytes still go at full speed.

=head2 cut_after($bytes)

C<$bytes> more server bytes reach the client, then the connections are closed (FIN): the server dying in the
middle of a message. 0 closes them now.

=head2 inject($bytes, %opt)

Arms the next connection to be accepted: once its client has sent its first FramebufferUpdateRequest (RFB
3.7 or 3.8, security type None or VNC authentication), the real server's output is read and thrown away and
C<$bytes> go to the client instead, C<repeat> times (default 1; 0: until the connection closes) as fast
as the client takes them. Then C<then> decides: C<hold> (default) keeps the connection open, C<close>
closes it. The client's bytes keep going to the real server, so its keys still reach the guest. One
injection arms one connection.

=head2 injected($connection), closed($connection)

Whether connection number C<$connection> has written all of its injection; whether it was closed (by either
side or by the relay).

=head2 key_events($connection)

The key events (RFB KeyEvent and QEMU extended key events) the clients sent after their handshake, in
order, as C<[$keysym, $down]> pairs: those of connection C<$connection>, or of all connections. Only followed
on RFB 3.7/3.8 connections with security type None or VNC authentication.

=head2 stop

Stops the relay (its connections are closed). Also done when the object goes away.

=cut
