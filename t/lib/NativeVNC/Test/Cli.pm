package NativeVNC::Test::Cli;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use Encode qw(decode);
use Exporter qw(import);
use File::Temp qw(tempdir);

use NativeVNC::Test::Util qw(repo_root spawn_group reap stop_group slurp);

our @EXPORT_OK = qw(nativevnc_binary run_nativevnc spawn_nativevnc read_text);

=encoding utf8

=head1 NAME

NativeVNC::Test::Cli - runs the nativevnc program in the tests, always within a time limit

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::Cli qw(run_nativevnc spawn_nativevnc read_text);

  my ($status, $out, $err) = run_nativevnc({ env => { NATIVEVNC_PASSWORD => undef }, timeout => 30 },
      'key', '--url', 'vnc://127.0.0.1:5901', 'ret');
  ($status, $out, $err) = run_nativevnc({ shell => q{nativevnc ticket --url 'webmks+https://...'} });

  my $run = spawn_nativevnc({}, 'proxy', '--url', $url, '--listen', '127.0.0.1:0');
  wait_until(10, 'listening', sub { read_text($run->{out}) =~ /listening on (\S+)/ });
  stop_group($run->{pid});

=head1 DESCRIPTION

The program is F<target/release/nativevnc>. It runs in its own process group (see C<spawn_group> in
L<NativeVNC::Test::Util>), with stdout and stderr in separate files of a temporary directory.

=head1 FUNCTIONS

=head2 nativevnc_binary

The path of the program.

=head2 run_nativevnc(\%opt, @args)

Runs the program with C<@args> and returns C<($exit_status, $stdout, $stderr)>, both outputs decoded from UTF-8.
Options: C<env> (variables to set; an undefined value removes the variable), C<timeout> (seconds, default 60;
then the program is killed and the test dies), C<dir> (working directory), C<shell> (a command line that
F</bin/sh> runs instead of C<@args>, with the program's directory first in C<PATH>, so that C<nativevnc> in it
is this program).

=head2 spawn_nativevnc(\%opt, @args)

Starts the program like C<run_nativevnc> (same options but C<timeout>) without waiting for it; returns
C<{pid, out, err}>: its process group, and the files its stdout and stderr go to. Stop it with C<stop_group>.

=head2 read_text($path)

The file's contents decoded from UTF-8 (empty if it does not exist).

=cut

sub nativevnc_binary () {
    return repo_root() . '/target/release/nativevnc';
}

sub spawn_nativevnc ($opt, @args) {
    my $binary = nativevnc_binary();
    croak "$binary missing: run make" unless -x $binary;
    my $tmp = tempdir('nativevnc-cli-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my %run = (out => "$tmp/stdout", err => "$tmp/stderr");
    my %env = %{ $opt->{env} // {} };
    local @ENV{keys %env} = values %env;
    delete @ENV{ grep { !defined $env{$_} } keys %env };
    local $ENV{PATH} = repo_root() . "/target/release:$ENV{PATH}";
    # The command's stderr goes to its own file; spawn_group sends stdout (and the shell's own errors) to the log.
    my @command =
      defined $opt->{shell}
      ? ('sh', '-c', qq{exec 2>"\$0"\n$opt->{shell}}, $run{err})
      : ('sh', '-c', 'exec 2>"$0"; exec "$@"', $run{err}, $binary, @args);
    $run{pid} = spawn_group(\@command, log => $run{out}, dir => $opt->{dir});
    return \%run;
}

sub run_nativevnc ($opt, @args) {
    my $run = spawn_nativevnc($opt, @args);
    my $timeout = $opt->{timeout} // 60;
    my $status = reap($run->{pid}, $timeout);
    if (!defined $status) {
        stop_group($run->{pid}, signal => 'KILL');
        my $what = $opt->{shell} // "nativevnc @args";
        croak "$what did not finish within ${timeout}s; its stderr:\n" . read_text($run->{err});
    }
    return ($status >> 8, read_text($run->{out}), read_text($run->{err}));
}

sub read_text ($path) {
    return decode('UTF-8', slurp($path) // '');
}

1;
