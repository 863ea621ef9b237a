package NativeVNC::Exception;

use v5.36;
use overload '""' => sub ($self, @) { $self->error }, fallback => 1;

our $VERSION = 'v0.1.0';

sub new ($class, %args) { bless {%args}, $class }
sub throw ($class, %args) { die $class->new(%args) }
sub rethrow ($self) { die $self }
sub error ($self) { $self->{error} // '' }
sub message ($self) { $self->error }

package NativeVNC::Exception::VNCSetupError {
    our @ISA = ('NativeVNC::Exception');
}

package NativeVNC::Exception::VNCProtocolError {
    our @ISA = ('NativeVNC::Exception');
}

package NativeVNC::Exception;

# The class to throw for $kind ('VNCSetupError' or 'VNCProtocolError'): os-autoinst's own when it is
# available, so that its backends recognise the error, otherwise ours.
sub class_for ($kind) {
    my $theirs = "OpenQA::Exception::$kind";
    return $theirs if $theirs->can('throw') || eval { local $SIG{__DIE__}; require OpenQA::Exceptions; $theirs->can('throw') };
    return "NativeVNC::Exception::$kind";
}

1;

__END__

=head1 NAME

NativeVNC::Exception - the VNC exceptions, os-autoinst's or ours

=head1 SYNOPSIS

    NativeVNC::Exception::class_for('VNCSetupError')->throw(error => 'Error connecting to ...');

=head1 DESCRIPTION

L<consoles::NativeVNC> throws C<OpenQA::Exception::VNCSetupError> when it cannot connect or log in, and
C<OpenQA::Exception::VNCProtocolError> when an established stream breaks, as os-autoinst's
C<consoles::VNC> does, so os-autoinst's relogin logic works unchanged. Outside os-autoinst (when
C<OpenQA::Exceptions> cannot be loaded) it throws C<NativeVNC::Exception::VNCSetupError> and
C<NativeVNC::Exception::VNCProtocolError> instead, which offer the same C<throw>, C<rethrow> and
C<error> methods.

=head1 FUNCTIONS

=head2 class_for($kind)

The class to throw for C<VNCSetupError> or C<VNCProtocolError>.

=cut
