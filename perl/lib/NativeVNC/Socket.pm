package NativeVNC::Socket;

use v5.36;
use Scalar::Util 'weaken';

our $VERSION = 'v0.1.0';

# A file handle standing for a consoles::NativeVNC connection, so that code written for consoles::VNC's
# IO::Socket (`close($vnc->socket)`, `$vnc->socket->close`) closes the native connection.
sub new ($class, $vnc) {
    # A new anonymous glob, as Symbol::gensym makes, without loading Symbol.
    my $fh = \do { local *HANDLE };
    tie *$fh, $class, $vnc;
    return bless $fh, $class;
}

sub TIEHANDLE ($class, $vnc) {
    my $self = bless {vnc => $vnc}, $class;
    weaken $self->{vnc};
    return $self;
}

sub CLOSE ($self) {
    $self->{vnc}->_disconnect if $self->{vnc};
    return 1;
}

sub close ($fh) { close $fh }

sub connected ($fh) {
    my $vnc = tied(*$fh)->{vnc};
    return $vnc && $vnc->_connected ? 1 : 0;
}

sub FILENO ($self) { undef }

sub _unsupported ($self, @) {
    require Carp;
    Carp::croak('the native VNC connection does not take raw bytes; use the consoles::NativeVNC methods');
}

*PRINT = *PRINTF = *WRITE = *READ = *READLINE = *GETC = \&_unsupported;

1;

__END__

=head1 NAME

NativeVNC::Socket - the file handle consoles::NativeVNC returns from C<socket>

=head1 DESCRIPTION

os-autoinst closes a console's VNC connection with C<close($vnc-E<gt>socket)> (C<consoles::vnc_base::disable>)
or C<$vnc-E<gt>socket-E<gt>close>. Both work on this handle and close the native connection. Reading or
writing raw bytes is not possible; C<fileno> is undefined.

=head1 METHODS

=head2 new($vnc)

A handle for the L<consoles::NativeVNC> object C<$vnc> (held weakly).

=head2 close

Closes the connection.

=head2 connected

Whether the connection is open.

=cut
