package NativeVNC::Error;

use v5.36;
use overload '""' => sub ($self, @) { $self->{message} }, fallback => 1;

our $VERSION = 'v0.1.0';

sub kind ($self) { $self->{kind} }
sub message ($self) { $self->{message} }

1;

__END__

=head1 NAME

NativeVNC::Error - what the Rust core dies with

=head1 SYNOPSIS

    eval { $client->connect({host => 'localhost', port => 5901}) };
    if (ref $@ && $@->isa('NativeVNC::Error') && $@->kind eq 'connect') { ... }

=head1 METHODS

=head2 kind

One of C<connect> (the server could not be reached), C<auth> (credentials rejected), C<protocol> (the
stream broke: a protocol violation, the server closing the connection, an I/O error), C<timeout>,
C<usage> (a bad argument, an unknown key name), C<internal> (a bug in the core, caught) and C<setup> (the
connection cannot be set up as configured and retrying at once will not help: a refused TLS certificate, an
unusable vSphere API answer, a webmks ticket not had within its attempts). Only C<connect> and C<timeout>
are worth retrying at once.

=head2 message

What went wrong, in words; stringification gives the same.

=cut
