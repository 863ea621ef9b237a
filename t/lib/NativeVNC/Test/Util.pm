package NativeVNC::Test::Util;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use Config;
use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(
  repo_root free_tcp_port free_x_display wait_until with_timeout
  spawn_group signal_group reap alive stop_group group_pids live_groups
  read_exactly slurp slurp_or_die file_tail proc_stat rfb_probe mirror_bits child_pids
);

# Process groups started by spawn_group in this process and not reaped yet: pid => owner pid.
my %live;
my %given_ports;
my %given_displays;

=head1 NAME

NativeVNC::Test::Util - helpers for the real-server tests: free ports and X displays, bounded waits,
process groups that are always reaped, files, an RFB handshake probe

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::Util qw(free_tcp_port wait_until spawn_group stop_group slurp);

  my $port = free_tcp_port();                       # any free port on 127.0.0.1
  my $vnc  = free_tcp_port(from => 5900, to => 6899);
  my $pid  = spawn_group(['Xvnc', ':42', ...], log => "$dir/xvnc.log");
  wait_until(20, 'Xvnc listening', sub { IO::Socket::INET->new("127.0.0.1:$port") });
  stop_group($pid);                                 # TERM, bounded wait, KILL, reaped
  my $log = slurp("$dir/xvnc.log") // '';           # undef if unreadable; slurp_or_die dies instead

=head1 DESCRIPTION

Every child started with C<spawn_group> runs in its own process group, gets SIGKILL when the test process dies
(Linux parent-death signal), and is killed and reaped by an END block if the test did not stop it. SIGINT,
SIGTERM and SIGHUP are turned into a normal exit (so END blocks and destructors run) unless the test installed
its own handlers. Only the process that spawned a group ever kills it (safe across fork).

Screens (PPM files, pixel comparisons) are L<NativeVNC::Test::Image>'s.

=head1 FUNCTIONS

=head2 repo_root

The absolute path of the repository (three levels above C<t/lib>).

=cut

sub repo_root () {
    return abs_path(dirname(__FILE__) . '/../../../..');
}

=head2 free_tcp_port(%opt)

A TCP port on 127.0.0.1 that nothing listens on now: C<from>/C<to> restrict the range (say 5900..6899 for a
VNC display number), otherwise the kernel picks an ephemeral port. Never hands out the same port twice in one
process. There is a window between the check and the server's bind: servers should retry on a clash.

=cut

sub free_tcp_port (%opt) {
    my ($from, $to) = @opt{qw(from to)};
    for (1 .. 200) {
        my $want = defined $from ? $from + int(rand(($to // $from + 999) - $from + 1)) : 0;
        my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $want, Proto => 'tcp',
            Listen => 1) or next;
        my $port = $sock->sockport;
        close $sock;
        next if $given_ports{$port}++;
        return $port;
    }
    croak 'no free TCP port found on 127.0.0.1' . (defined $from ? " in $from.." . ($to // $from + 999) : '');
}

=head2 free_x_display(%opt)

An X display number (default range 20..899) with no lock file, no socket in F</tmp/.X11-unix> and no
abstract socket; never the same twice in one process.

=cut

sub free_x_display (%opt) {
    my ($from, $to) = ($opt{from} // 20, $opt{to} // 899);
    my $abstract = _abstract_x_sockets();
    for (1 .. 500) {
        my $n = $from + int(rand($to - $from + 1));
        next if $given_displays{$n} || $abstract->{$n} || -e "/tmp/.X$n-lock" || -e "/tmp/.X11-unix/X$n";
        $given_displays{$n} = 1;
        return $n;
    }
    croak "no free X display found in $from..$to";
}

sub _abstract_x_sockets () {
    my %used;
    open my $fh, '<', '/proc/net/unix' or return \%used;
    while (my $line = <$fh>) {
        $used{$1} = 1 if $line =~ m{\@/tmp/\.X11-unix/X(\d+)\s*$};
    }
    return \%used;
}

=head2 wait_until($timeout, $what, $code, %opt)

Calls C<$code> until it returns a true value and returns that value; dies with
C<"$what did not happen within ${timeout}s"> when C<$timeout> seconds pass first. Polls every 10 ms at first,
backing off to C<max_interval> (default 0.2 s). Exceptions from C<$code> propagate.

=cut

sub wait_until ($timeout, $what, $code, %opt) {
    my $deadline = time + $timeout;
    my $interval = 0.01;
    my $max = $opt{max_interval} // 0.2;
    while (1) {
        my $result = $code->();
        return $result if $result;
        my $left = $deadline - time;
        croak "$what did not happen within ${timeout}s" if $left <= 0;
        sleep($interval < $left ? $interval : $left);
        $interval *= 2;
        $interval = $max if $interval > $max;
    }
}

=head2 with_timeout($timeout, $what, $code)

Runs C<$code> (which may block, e.g. X11::Protocol requests) under a C<local $SIG{ALRM}> guard; dies with
C<"$what did not finish within ${timeout}s"> when the alarm fires. Re-arms an outer alarm afterwards.

=cut

sub with_timeout ($timeout, $what, $code) {
    my $want_list = wantarray;
    my $start = Time::HiRes::time();
    # Time::HiRes::alarm keeps fractions: whole seconds would shorten an outer alarm on every call.
    my $outer = Time::HiRes::alarm(0);
    my $marker = "nativevnc-timeout-" . int(rand(1e9)) . "\n";
    my ($ok, @result, $error);
    {
        local $SIG{ALRM} = sub { die $marker };
        Time::HiRes::alarm($timeout > 0 ? $timeout : 1);
        $ok = eval { @result = $want_list ? $code->() : scalar $code->(); 1 };
        $error = $@;
        alarm 0;
    }
    if ($outer) {
        my $left = $outer - (Time::HiRes::time() - $start);
        Time::HiRes::alarm($left > 0.01 ? $left : 0.01);
    }
    croak "$what did not finish within ${timeout}s" if !$ok && $error eq $marker;
    die $error unless $ok;
    return $want_list ? @result : $result[0];
}

=head2 spawn_group(\@command, %opt)

Forks and execs C<@command> (no shell) in a new process group whose id is the returned pid. Options: C<log>
(file for stdout and stderr, appended; default F</dev/null>), C<keep_fds> (array of file descriptor numbers to
leave open across exec), C<dir> (the working directory of the command). Standard input is F</dev/null>.

=cut

sub spawn_group ($command, %opt) {
    my $log = $opt{log} // '/dev/null';
    my $pid = fork // croak "fork failed: $!";
    if ($pid == 0) {
        _exec_child($command, $log, $opt{keep_fds} // [], $opt{dir});
    }
    POSIX::setpgid($pid, $pid);    # also done by the child: the group exists before either goes on
    $live{$pid} = $$;
    return $pid;
}

sub _exec_child ($command, $log, $keep_fds, $dir) {
    eval {
        POSIX::setpgid(0, 0);
        chdir $dir or die "$dir: $!" if defined $dir;
        _set_parent_death_signal();
        open STDIN, '<', '/dev/null' or die "stdin: $!";
        open STDOUT, '>>', $log or die "$log: $!";
        open STDERR, '>&', \*STDOUT or die "stderr: $!";
        for my $fd (@$keep_fds) {
            open my $fh, '<&=', $fd or die "fd $fd: $!";
            my $flags = fcntl $fh, POSIX::F_GETFD(), 0;
            fcntl $fh, POSIX::F_SETFD(), $flags & ~POSIX::FD_CLOEXEC();
        }
        exec { $command->[0] } @$command or die "exec $command->[0]: $!";
    };
    print STDERR "spawn_group: $@";
    POSIX::_exit(127);
}

sub _set_parent_death_signal () {
    my %prctl = (x86_64 => 157, aarch64 => 167);
    my ($arch) = $Config{archname} =~ /^([^-]+)/;
    return unless $^O eq 'linux' && $prctl{$arch};
    syscall($prctl{$arch}, 1, 9);    # prctl(PR_SET_PDEATHSIG, SIGKILL)
}

=head2 signal_group($pid, $signal)

Sends C<$signal> (name or number) to the whole process group C<$pid>. Returns the number of processes signalled.

=cut

sub signal_group ($pid, $signal) {
    return kill($signal, -$pid);
}

=head2 reap($pid, $timeout)

Waits at most C<$timeout> seconds for child C<$pid> to exit; returns its wait status, or undef if it is still
running. A pid that is not (or no longer) our child counts as reaped with status -1.

=cut

sub reap ($pid, $timeout = 0) {
    my $deadline = time + $timeout;
    my $interval = 0.005;
    while (1) {
        local $?;
        my $got = waitpid($pid, WNOHANG);
        if ($got == $pid || $got < 0) {
            delete $live{$pid};
            return $got == $pid ? $? : -1;
        }
        my $left = $deadline - time;
        return undef if $left <= 0;
        sleep($interval < $left ? $interval : $left);
        $interval *= 2 if $interval < 0.1;
    }
}

=head2 alive($harness)

For a harness object that keeps its child in C<pid>, usable as its C<alive> method: true while the child has
not exited; once it has, reaps it, keeps its wait status in C<exit_status> and deletes C<pid>.

=cut

sub alive ($self) {
    return 0 unless $self->{pid};
    return 1 unless defined(my $status = reap($self->{pid}, 0));
    $self->{exit_status} = $status;
    delete $self->{pid};
    return 0;
}

=head2 stop_group($pid, %opt)

Stops process group C<$pid>: sends C<signal> (default TERM) to the group, waits up to C<timeout> seconds
(default 10) for the leader, then SIGKILLs the group and reaps the leader; finally SIGKILLs any straggler left in
the group. Returns the leader's wait status. Does nothing for a group another process spawned.

=cut

sub stop_group ($pid, %opt) {
    return undef if ($live{$pid} // $$) != $$;
    signal_group($pid, $opt{signal} // 'TERM');
    my $status = reap($pid, $opt{timeout} // 10);
    if (!defined $status) {
        signal_group($pid, 'KILL');
        $status = reap($pid, 10);
        warn "process $pid did not die after SIGKILL\n" unless defined $status;
    }
    signal_group($pid, 'KILL') if group_pids($pid);
    return $status;
}

=head2 group_pids($pgid)

The pids of all processes (zombies excluded) whose process group is C<$pgid>, from F</proc>.

=cut

sub group_pids ($pgid) {
    return grep {
        my ($state, undef, $pgrp) = proc_stat($_);
        defined $pgrp && $pgrp == $pgid && $state ne 'Z'
    } _all_pids();
}

=head2 proc_stat($pid)

The fields of F</proc/$pid/stat> after the command name, as a list: state, parent pid, process group, session
and so on (C<proc(5)>; the start time is at index 19). An empty list if there is no such process.

=cut

sub proc_stat ($pid) {
    my $line = slurp("/proc/$pid/stat") // return;
    return split ' ', substr($line, rindex($line, ')') + 2);
}

sub _all_pids () {
    opendir my $dh, '/proc' or return;
    return grep { /^\d+$/ } readdir $dh;
}

=head2 live_groups

The pids of process groups this process spawned and has not reaped yet.

=cut

sub live_groups () {
    return grep { $live{$_} == $$ } sort { $a <=> $b } keys %live;
}

END {
    local ($?, $!, $@);
    for my $pid (live_groups()) {
        signal_group($pid, 'KILL');
        reap($pid, 5);
    }
}

for my $signal (qw(INT TERM HUP)) {
    next if defined $SIG{$signal} && $SIG{$signal} ne 'DEFAULT';
    my $number = { INT => 2, TERM => 15, HUP => 1 }->{$signal};
    $SIG{$signal} = sub { print STDERR "caught SIG$signal, cleaning up\n"; exit(128 + $number) };
}

=head2 child_pids($parent = this process)

The process ids of the children of C<$parent> that still exist (zombies included), from F</proc>.

=cut

sub child_pids ($parent = $$) {
    return grep { ((proc_stat($_))[1] // 0) == $parent } _all_pids();
}

=head2 read_exactly($socket, $length, $timeout)

Reads exactly C<$length> bytes from C<$socket> within C<$timeout> seconds; dies on EOF or timeout.

=cut

sub read_exactly ($socket, $length, $timeout = 10) {
    my $buffer = '';
    my $deadline = time + $timeout;
    my $select = IO::Select->new($socket);
    while (length $buffer < $length) {
        my $left = $deadline - time;
        croak "reading $length bytes did not happen within ${timeout}s" if $left <= 0;
        next unless $select->can_read($left);
        my $got = sysread $socket, $buffer, $length - length $buffer, length $buffer;
        croak "read failed: $!" unless defined $got;
        croak 'connection closed after ' . length($buffer) . " of $length bytes" if $got == 0;
    }
    return $buffer;
}

=head2 slurp($path)

The whole file, as bytes, or undef if it cannot be read.

=head2 slurp_or_die($path)

The whole file, as bytes; dies with C<cannot read $path: reason> if it cannot be read.

=cut

sub slurp ($path) {
    open my $fh, '<:raw', $path or return undef;
    local $/;
    return scalar <$fh>;
}

sub slurp_or_die ($path) {
    return slurp($path) // croak "cannot read $path: $!";
}

=head2 file_tail($path, $bytes)

The last C<$bytes> (default 2000) bytes of a file, or an empty string; for error messages.

=cut

sub file_tail ($path, $bytes = 2000) {
    open my $fh, '<', $path or return '';
    my $size = -s $fh;
    seek $fh, $size - $bytes, 0 if $size > $bytes;
    local $/;
    return scalar(<$fh>) // '';
}

=head2 rfb_probe($host, $port, %opt)

A minimal RFB 3.8 handshake, to check a test server from the harness side (not a VNC client): reads the
server's version, picks security type None (1) or, with C<password>, VNC authentication (2), then sends
ClientInit (C<shared>, default 1) and reads ServerInit. Returns a hashref with C<version>, C<security_types>
(array), C<width>, C<height>, C<name>; dies with the server's reason when authentication fails. C<timeout>
(default 10 s) bounds each read.

=cut

sub rfb_probe ($host, $port, %opt) {
    my $timeout = $opt{timeout} // 10;
    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => $timeout)
      or croak "cannot connect to $host:$port: $!";
    my %info;
    ($info{version}) = read_exactly($sock, 12, $timeout) =~ /^RFB (\d{3}\.\d{3})\n$/
      or croak 'not an RFB server';
    syswrite $sock, "RFB 003.008\n";
    my $count = unpack 'C', read_exactly($sock, 1, $timeout);
    croak 'server refused: ' . _rfb_reason($sock, $timeout) if $count == 0;
    $info{security_types} = [unpack 'C*', read_exactly($sock, $count, $timeout)];
    my $want = defined $opt{password} ? 2 : 1;
    croak "server does not offer security type $want (offers @{$info{security_types}})"
      unless grep { $_ == $want } @{ $info{security_types} };
    syswrite $sock, pack('C', $want);
    syswrite $sock, _vnc_auth_response($opt{password}, read_exactly($sock, 16, $timeout)) if $want == 2;
    my $result = unpack 'N', read_exactly($sock, 4, $timeout);
    croak 'authentication failed: ' . _rfb_reason($sock, $timeout) if $result != 0;
    syswrite $sock, pack('C', $opt{shared} // 1);
    my ($w, $h, $pixel_format, $name_length) = unpack 'nna16N', read_exactly($sock, 24, $timeout);
    @info{qw(width height name)} = ($w, $h, read_exactly($sock, $name_length, $timeout));
    close $sock;
    return \%info;
}

sub _rfb_reason ($sock, $timeout) {
    my $reason = eval { read_exactly($sock, unpack('N', read_exactly($sock, 4, $timeout)), $timeout) };
    return $reason // '(no reason given)';
}

# VNC authentication: the 16-byte challenge DES-encrypted with the password (8 bytes, NUL-padded) as key,
# each key byte with its bits mirrored (the protocol's DES variant vs. standard DES).
sub _vnc_auth_response ($password, $challenge) {
    require Crypt::DES;
    my $key = pack 'C8', map { mirror_bits($_) } unpack 'C8', pack('a8', $password);
    my $des = Crypt::DES->new($key);
    return $des->encrypt(substr $challenge, 0, 8) . $des->encrypt(substr $challenge, 8, 8);
}

=head2 mirror_bits($byte)

C<$byte> with its 8 bits in reverse order (VNC's DES keys are bit-mirrored relative to standard DES).

=cut

sub mirror_bits ($byte) {
    return oct('0b' . reverse sprintf '%08b', $byte);
}

1;
