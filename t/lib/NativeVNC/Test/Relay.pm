package NativeVNC::Test::Relay;

use v5.36;
use Carp 'croak';
use File::Temp 'tempdir';

use NativeVNC::Test::Util qw(repo_root free_tcp_port spawn_group signal_group stop_group wait_until);

# A relay to $host:$port on a free port, or on port `listen` (e.g. a stopped relay's, to bring it back).
sub start ($class, $host, $port, %opt) {
    my $tmp = tempdir('nativevnc-relay-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $listen = $opt{listen} // free_tcp_port();
    my $log = "$tmp/relay.log";
    my $pid = spawn_group([$^X, repo_root() . '/t/bin/relay', $listen, $host, $port], log => $log);
    my $self = bless {pid => $pid, port => $listen, log => $log, owner => $$}, $class;
    wait_until(10, 'the relay listening', sub { $self->_log =~ /^listening$/m });
    return $self;
}

sub _log ($self) {
    open my $fh, '<', $self->{log} or return '';
    local $/;
    return <$fh> // '';
}

sub host ($self) { '127.0.0.1' }
sub port ($self) { $self->{port} }
sub connections ($self) { scalar(() = $self->_log =~ /^connection \d+$/mg) }
sub freeze ($self) { kill 'USR1', $self->{pid} }
sub thaw ($self) { kill 'USR2', $self->{pid} }
sub drop ($self) { kill 'HUP', $self->{pid} }

sub stop ($self) {
    return unless $self->{pid} && $self->{owner} == $$;
    stop_group(delete $self->{pid});
}

sub DESTROY ($self) { $self->stop }

1;

__END__

=head1 NAME

NativeVNC::Test::Relay - a TCP relay between a VNC client and a real server, to stall or drop connections

=head1 SYNOPSIS

    my $relay = NativeVNC::Test::Relay->start($guest->vnc_host, $guest->vnc_port);
    # connect the client to $relay->host, $relay->port
    $relay->freeze;        # the server stops sending on the open connections
    $relay->thaw;
    $relay->drop;          # the open connections are closed
    $relay->connections;   # how many were accepted so far

=head1 DESCRIPTION

Runs C<t/bin/relay> in its own process group (stopped with the test). New connections are always relayed;
C<freeze> and C<drop> act on those open at the time.

=cut
