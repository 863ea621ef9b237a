package NativeVNC::Test::OsAutoinst;

use v5.36;
use strict;
use warnings;

use Exporter 'import';
use Test::More ();

use lib '/usr/lib/os-autoinst';
use bmwqemu;
use cv;
use OpenQA::Exceptions;

our @EXPORT_OK = qw(deadline capture_log error_of message_of);

cv::init();
require tinycv;

=encoding utf8

=head1 NAME

NativeVNC::Test::OsAutoinst - os-autoinst's side of a console test

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::OsAutoinst qw(deadline capture_log error_of message_of);
  use consoles::NativeVNC;

  deadline(300);
  my (@log, @warnings);
  capture_log(diag => \@log, warn => \@log);          # or keep them apart, or drop one
  my $e = error_of(sub { consoles::NativeVNC->new({...})->login });
  isa_ok($e, 'OpenQA::Exception::VNCSetupError');
  like(message_of($e), qr/.../);

=head1 DESCRIPTION

Loads os-autoinst's modules from its Debian package (F</usr/lib/os-autoinst>): C<bmwqemu>, C<cv> and
C<OpenQA::Exceptions>, and initialises tinycv, as isotovideo does before any console exists.

=head1 FUNCTIONS

=head2 deadline($seconds)

Ends the test with a diagnostic and exit status 1 if it has not finished within C<$seconds>.

=head2 capture_log(diag => \@lines, warn => \@lines)

Replaces C<bmwqemu::diag> and C<bmwqemu::fctwarn>, through which consoles log, with functions pushing each
message onto the given array; a function without an array drops its messages. One array for both keeps them
in order.

=head2 error_of($code)

The exception C<$code> throws, or C<''> when it returns.

=head2 message_of($e)

An exception's message: C<< $e->message >> for an exception object, the string itself otherwise.

=cut

sub deadline ($seconds) {
    $SIG{ALRM} = sub { Test::More::diag("test did not finish within $seconds s"); exit 1 };
    alarm $seconds;
}

sub capture_log (%to) {
    no warnings 'redefine';
    *bmwqemu::diag = sub ($message, @) { push @{ $to{diag} }, $message if $to{diag} };
    *bmwqemu::fctwarn = sub ($message, @) { push @{ $to{warn} }, $message if $to{warn} };
}

sub error_of ($code) { eval { $code->(); 1 } ? '' : $@ }

sub message_of ($e) { ref $e ? $e->message : $e }

1;
