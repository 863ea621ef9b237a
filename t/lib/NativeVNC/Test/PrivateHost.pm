package NativeVNC::Test::PrivateHost;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path getcwd);
use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Select;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time);

use NativeVNC::Test::Util qw(repo_root reap child_pids slurp_or_die);

our $MARKER = 'NATIVEVNC_PRIVATE_HOST';

# Where the process was when this module was loaded: the inner run starts there, as the outer one did.
my $START_DIR = getcwd();
my $LIB_DIR = abs_path(dirname(__FILE__) . '/../..');
my $OLD_ROOT = '/.nativevnc-old-root';

# The outer side's `unshare` process and the scratch directory, while an inner run is going on.
my %running;

=head1 NAME

NativeVNC::Test::PrivateHost - run a test on a "private host": its own network, mount, PID, UTS and IPC
namespaces over a private copy of the root file system, where it may take ports 22 and 443, set root's
password, create F</vmfs> and run OpenSSH without changing the machine

=head1 SYNOPSIS

  use Test::More;
  use lib 't/lib';
  use NativeVNC::Test::PrivateHost;
  BEGIN { NativeVNC::Test::PrivateHost::enter(timeout => 900) }   # re-runs this test inside, exits

  # From here on the test runs inside (as root, a child of PID 1 of its own PID namespace).
  my $sshd = NativeVNC::Test::PrivateHost::start_sshd(root_password => 's3cret');   # 127.0.0.1:22
  NativeVNC::Test::PrivateHost::write_file('/usr/local/bin/hello', "#!/bin/sh\necho hello\n", 0755);
  mkdir '/vmfs';                                                   # the private root's, not the host's
  ...
  $sshd->stop;                                                     # or let DESTROY do it

=head1 DESCRIPTION

C<enter> re-runs the calling program, with the same command line and environment, as

  setpriv --pdeathsig KILL -- unshare --net --mount --uts --ipc --pid --fork --kill-child \
      --propagation private -- perl -MNativeVNC::Test::PrivateHost -e '..._init(...)' SPEC

whose first process (PID 1 of the new PID namespace, a small Perl "init") builds the private root and then
runs the program as its only child, reaps every orphan and exits with the program's exit status. When it
exits the kernel kills whatever is left in the namespace, so nothing the test started survives it, whatever
the test did; and if the outer process dies, C<setpriv>'s parent-death signal and C<unshare --kill-child>
bring down the whole chain.

The private root:

=over

=item * a tmpfs, mounted (in the new mount namespace only) on an empty scratch directory that the outer side
makes in the temporary directory (C<TMPDIR> or F</tmp>) and removes afterwards, holds the overlay's upper and
work directories: every change to the private root lives in memory and vanishes with the namespace; after a
SIGKILL of the outer process, only that empty directory is left on the host;

=item * an overlayfs with C<lowerdir=/> (the host's root file system as it is, read-only) is the new root:
F</etc/shadow>, F</etc/ssh>, F</root>, F</usr/local/bin>, F</var/lib/libvirt/images>, F</run>, and new
directories such as F</vmfs> are the overlay's, copied up when written. Only the root file system's own
contents are seen, not the host's other mounts;

=item * fresh F</proc> (of the new PID namespace) and F</sys> (of the new network namespace), and the host's
F</dev> bound recursively (with F</dev/pts> and F</dev/shm>);

=item * shared with the host, bound read-write at the same paths: F</tmp>, C<TMPDIR> if set, the repository
(L<NativeVNC::Test::Util/repo_root>, so F<blib>, F<target/release> and F<build/guest> are the live ones and
anything written there is really written) and the C<share> directories. Bindings are not recursive: mounts
below a shared directory are not carried over;

=item * C<pivot_root> into it, the host's old root detached: the host's file system is not reachable from
inside except through the shared directories;

=item * the loopback interface up, with 127.0.0.1/8 and ::1: every 127.x.y.z address works, nothing outside
is reachable. Besides it, a bridge without ports, C<private0>, holds 192.0.2.1/32 (an address of the range
kept for documentation) for one reason: C<getaddrinfo> with C<AI_ADDRCONFIG>, as libvirt's esx driver resolves
even C<127.0.0.1>, answers "Name or service not known" while no interface but loopback has an IPv4 address.
Nothing is sent to it.

=back

The program runs in the directory where this module was loaded (normally the repository), with the
environment it had when it called C<enter> (C<PATH>, C<HOME>=F</root> in the overlay, C<TMPDIR>, C<PERL5LIB>
...) plus C<NATIVEVNC_PRIVATE_HOST>. Its standard input, output and error are the outer process's, so its TAP
reaches C<prove> unchanged. The hostname starts as the host's (its own UTS namespace: C<hostname NAME> is
private).

Building the private host takes about 50 ms; C<start_sshd> about 0.1 s.

=head1 FUNCTIONS

=head2 enter(%opt)

When already inside, returns at once. Otherwise runs the program inside a new private host and exits with its
exit status (128 + signal number when a signal killed it); the outer process prints nothing on standard
output. Call it first thing, best in a C<BEGIN> block right after loading this module, and at least before
changing C<$0> or the working directory (the inner run re-executes F</proc/self/cmdline>, the original command
line, with C<$^X> as the interpreter, in the directory where this module was loaded).

Options: C<timeout> (seconds, default 600): when the inner program has not finished by then, it gets SIGTERM
(forwarded by the init), 10 s later the whole namespace is killed, and the outer process exits non-zero with
a message on standard error. C<share> (array of host directories, also bound read-write inside).
C<after> (code): called in the outer process after the inner run with its exit status; what it returns is
the outer process's exit status (for checks that only the host can make; it must not print TAP test lines,
only comments).

Dies with the reason, before running anything, when not running as root or a tool (C<unshare>, C<setpriv>,
C<mount>, C<pivot_root>, C<umount>, C<ip>) is missing, and with the failing step and its message when the
private root cannot be built (say, no overlayfs).

=cut

sub enter (%opt) {
    return if inside();
    my $code = _run_inside(%opt);
    $code = $opt{after}->($code) if $opt{after};
    exit $code;
}

=head2 inside

True in a process inside a private host: C<NATIVEVNC_PRIVATE_HOST> is set and names the mount and network
namespaces the outer side was in, and this process is in others. A process on the host that inherited the
variable is not inside.

=cut

sub inside () {
    my $outer = $ENV{$MARKER} // return 0;
    my @outer = split ' ', $outer;
    my @mine = split ' ', _namespace_ids();
    return 0 unless @outer == @mine;
    return (grep { $outer[$_] eq $mine[$_] } 0 .. $#mine) ? 0 : 1;
}

sub _namespace_ids () {
    return join ' ', map { readlink("/proc/self/ns/$_") // "$_:?" } qw(mnt net);
}

=head2 write_file($path, $content, $mode = 0644)

Writes C<$content> (bytes) to the absolute C<$path> in the private root, making missing directories (mode
0755), replacing the file atomically, then sets C<$mode>. Dies outside a private host and when the file would
land in a directory shared with the host (F</tmp>, the repository, F</dev> ...): it only ever changes the
private copy. Returns C<$path>.

=cut

sub write_file ($path, $content, $mode = 0644) {
    croak "write_file($path): not inside a private host" unless inside();
    croak "write_file($path): not an absolute path" unless File::Spec->file_name_is_absolute($path);
    _check_private($path);
    make_path(dirname($path), { mode => 0755 });
    my $tmp = "$path.nativevnc-$$";
    open my $fh, '>:raw', $tmp or croak "write_file: $tmp: $!";
    print {$fh} $content or croak "write_file: $tmp: $!";
    close $fh or croak "write_file: $tmp: $!";
    chmod $mode, $tmp or croak "write_file: chmod $tmp: $!";
    rename $tmp, $path or croak "write_file: rename to $path: $!";
    return $path;
}

# Dies unless $path (or its nearest existing ancestor) is on the private root's overlay, i.e. the device of /.
sub _check_private ($path) {
    my $root_dev = (stat '/')[0];
    my $probe = $path;
    $probe = dirname($probe) until -e $probe;
    croak "write_file($path): $probe is shared with the host, not part of the private root"
      unless (stat $probe)[0] == $root_dev;
}

=head2 set_password($user, $password)

Sets C<$user>'s password in the private root's F</etc/shadow> with C<chpasswd> (the password goes through a
pipe, never on a command line). Dies outside a private host or when C<chpasswd> fails.

=cut

sub set_password ($user, $password) {
    croak 'set_password: not inside a private host' unless inside();
    croak 'set_password: user and password must not contain a newline' if "$user$password" =~ /\n/;
    croak "set_password: bad user name '$user'" if $user =~ /:/ || $user eq '';
    my $out = _capture(['chpasswd'], "$user:$password\n");
    croak "set_password: chpasswd failed for $user: $out" if $?;
}

=head2 start_sshd(%opt)

Starts OpenSSH inside: see L</"OpenSSH inside (NativeVNC::Test::PrivateHost::Sshd)">.

=cut

sub start_sshd (%opt) {
    return NativeVNC::Test::PrivateHost::Sshd->start(%opt);
}

# --- The outer side ---

sub _run_inside (%opt) {
    croak 'NativeVNC::Test::PrivateHost needs root (unshare, mount, an overlay of /): run the test as root'
      if $> != 0;
    my %tool;
    for my $name (qw(unshare setpriv mount umount pivot_root ip)) {
        $tool{$name} = _which($name)
          // croak "NativeVNC::Test::PrivateHost needs $name (util-linux, iproute2): run tools/install-deps";
    }
    my $timeout = $opt{timeout} // 600;
    my @command = _own_command_line();
    my $scratch = tempdir('nativevnc-private-host-XXXXXX', TMPDIR => 1);
    $running{scratch} = $scratch;
    my %spec = (scratch => $scratch, shares => [_shares($opt{share} // [])], cwd => $START_DIR,
        command => \@command);

    pipe my $status_r, my $status_w or croak "pipe: $!";
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        close $status_r;
        fcntl $status_w, F_SETFD, fcntl($status_w, F_GETFD, 0) & ~FD_CLOEXEC;
        $spec{status_fd} = fileno $status_w;
        $ENV{$MARKER} = _namespace_ids();
        my @init = ($^X, "-I$LIB_DIR", '-M' . __PACKAGE__, '-e', __PACKAGE__ . '::_init(@ARGV)',
            JSON::PP->new->canonical->encode(\%spec));
        exec { $tool{setpriv} } 'setpriv', '--pdeathsig', 'KILL', '--', $tool{unshare}, '--net', '--mount',
          '--uts', '--ipc', '--pid', '--fork', '--kill-child', '--propagation', 'private', '--', @init
          or print STDERR "NativeVNC::Test::PrivateHost: exec setpriv: $!\n";
        POSIX::_exit(127);
    }
    $running{pid} = $pid;
    close $status_w;
    _await_setup($pid, $status_r);

    my $status = reap($pid, $timeout);
    my $timed_out = !defined $status;
    if ($timed_out) {
        print STDERR "# NativeVNC::Test::PrivateHost: the test did not finish within ${timeout}s, stopping it\n";
        kill 'TERM', child_pids($pid);      # the init, which passes it on to the test
        $status = reap($pid, 10);
        if (!defined $status) {
            kill 'KILL', $pid;              # the init follows (unshare --kill-child), then the namespace
            $status = reap($pid, 10);
        }
    }
    _finish();
    my $code = _exit_code($status // -1);
    return $timed_out && !$code ? 1 : $code;
}

# Reads the init's report: "ok" once the private root is built, or the reason it could not be.
sub _await_setup ($pid, $status_r) {
    my ($report, $closed) = ('', 0);
    my $deadline = time + 60;
    my $select = IO::Select->new($status_r);
    while (!$closed && $report !~ /\n/ && (my $left = $deadline - time) > 0) {
        next unless $select->can_read($left);
        $closed = !sysread $status_r, $report, 4096, length $report;
    }
    close $status_r;
    return if $report eq "ok\n";
    kill 'KILL', $pid;
    my $status = reap($pid, 10) // -1;
    _finish();
    chomp $report;
    croak "NativeVNC::Test::PrivateHost: cannot build the private host: $report" if $report =~ s/^error: //;
    croak 'NativeVNC::Test::PrivateHost: the private host was not built within 60 s' unless $closed;
    croak sprintf 'NativeVNC::Test::PrivateHost: cannot build the private host: unshare exited with status %d '
      . '(its message is above)', _exit_code($status);
}

sub _finish () {
    delete $running{pid};
    my $scratch = delete $running{scratch} // return;
    rmdir $scratch;    # empty on the host: the tmpfs on it existed only in the private mount namespace
}

END {
    if (my $pid = $running{pid}) {
        local ($?, $!);
        kill 'KILL', $pid;
        reap($pid, 10);
    }
    _finish();
}

# The command line this process was started with, its interpreter replaced by $^X.
sub _own_command_line () {
    my @argv = split /\0/, slurp_or_die('/proc/self/cmdline'), -1;
    pop @argv if @argv && $argv[-1] eq '';
    croak 'NativeVNC::Test::PrivateHost: cannot read this program\'s command line' unless @argv;
    return ($^X, @argv[1 .. $#argv]);
}

# The shared directories, absolute and existing, parents before children.
sub _shares ($extra) {
    my @wanted = ('/tmp', $ENV{TMPDIR} // (), repo_root(), @$extra);
    my %seen;
    my @shares;
    for my $dir (@wanted) {
        my $abs = abs_path($dir);
        croak "NativeVNC::Test::PrivateHost: shared directory $dir does not exist" unless defined $abs && -d $abs;
        croak 'NativeVNC::Test::PrivateHost: / cannot be shared' if $abs eq '/';
        push @shares, $abs unless $seen{$abs}++;
    }
    return sort { length $a <=> length $b } @shares;
}

sub _which ($program) {
    return $program if $program =~ m{/};
    my ($dir) = grep { -x "$_/$program" } File::Spec->path, '/usr/sbin', '/sbin';
    return defined $dir ? "$dir/$program" : undef;
}

sub _exit_code ($status) {
    return 255 if $status < 0;
    return $status & 127 ? 128 + ($status & 127) : $status >> 8;
}

# --- The init: PID 1 of the private host ---

sub _init ($json) {
    my $spec = JSON::PP::decode_json($json);
    open my $report, '>&=', $spec->{status_fd} or die "status pipe: $!";
    fcntl $report, F_SETFD, FD_CLOEXEC;
    $report->autoflush(1);
    if (!eval { _build_root($spec); 1 }) {
        my $error = $@ =~ s/\s+\z//r =~ s/\s*\n\s*/; /gr;
        print {$report} "error: $error\n";
        POSIX::_exit(1);
    }
    my $test = fork // do { print {$report} "error: fork: $!\n"; POSIX::_exit(1) };
    if ($test == 0) {
        exec { $spec->{command}[0] } @{ $spec->{command} }
          or print STDERR "NativeVNC::Test::PrivateHost: exec $spec->{command}[0]: $!\n";
        POSIX::_exit(127);
    }
    for my $signal (qw(TERM INT HUP)) {
        $SIG{$signal} = sub (@) { kill $signal, $test };
    }
    print {$report} "ok\n";
    close $report;
    # Reap orphans until the test itself exits; returning kills the rest of the namespace.
    while ((my $pid = wait) > 0) {
        POSIX::_exit(_exit_code($?)) if $pid == $test;
    }
    POSIX::_exit(255);
}

sub _build_root ($spec) {
    my $scratch = $spec->{scratch};
    my $root = "$scratch/root";
    _mount('-t', 'tmpfs', '-o', 'mode=0700', 'nativevnc-private-host', $scratch);
    mkdir "$scratch/$_" or die "mkdir $scratch/$_: $!\n" for qw(upper work root);
    _mount('-t', 'overlay', '-o', "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work",
        'nativevnc-private-host', $root);
    _mount('-t', 'proc', 'proc', "$root/proc");
    _mount('-t', 'sysfs', 'sysfs', "$root/sys");
    _mount('--rbind', '/dev', "$root/dev");
    for my $dir (@{ $spec->{shares} }) {
        make_path("$root$dir");
        _mount('--bind', $dir, "$root$dir");
    }
    mkdir "$root$OLD_ROOT" or die "mkdir $root$OLD_ROOT: $!\n";
    _run('pivot_root', $root, "$root$OLD_ROOT");
    chdir '/' or die "chdir /: $!\n";
    _run('umount', '--lazy', $OLD_ROOT);
    rmdir $OLD_ROOT or die "rmdir $OLD_ROOT: $!\n";
    _run('ip', 'link', 'set', 'lo', 'up');
    # getaddrinfo with AI_ADDRCONFIG, as libvirt's esx driver resolves its host, finds no IPv4 address at all
    # while loopback is the only interface: an address nothing is sent to, on a bridge without ports.
    _run('ip', 'link', 'add', 'private0', 'type', 'bridge');
    _run('ip', 'address', 'add', '192.0.2.1/32', 'dev', 'private0');
    _run('ip', 'link', 'set', 'private0', 'up');
    chdir $spec->{cwd} or die "chdir $spec->{cwd} inside: $!\n";
}

sub _mount (@args) { _run('mount', @args) }

# Runs a command, dies with its output unless it succeeds.
sub _run (@command) {
    my $out = _capture(\@command);
    die "@command: " . ($out =~ s/\s+\z//r || 'failed') . sprintf(" (exit status %d)\n", _exit_code($?)) if $?;
}

# Runs \@command (the program looked up in PATH, /usr/sbin and /sbin) with $input (if any) on stdin; returns
# its output and error output together and sets $?.
sub _capture ($command, $input = undef) {
    my $program = _which($command->[0]) // $command->[0];
    pipe my $in_r, my $in_w or die "pipe: $!";
    pipe my $out_r, my $out_w or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $in_w;
        close $out_r;
        open STDIN, '<&', $in_r or POSIX::_exit(127);
        open STDOUT, '>&', $out_w or POSIX::_exit(127);
        open STDERR, '>&', $out_w or POSIX::_exit(127);
        exec { $program } @$command or print STDERR "exec $program: $!\n";
        POSIX::_exit(127);
    }
    close $in_r;
    close $out_w;
    local $SIG{PIPE} = 'IGNORE';    # a command that exits without reading its input is an error, not a signal
    print {$in_w} $input if defined $input;
    close $in_w;
    my $out = do { local $/; <$out_r> } // '';
    close $out_r;
    waitpid $pid, 0;
    return $out;
}

=head1 OpenSSH inside (NativeVNC::Test::PrivateHost::Sshd)

=head2 start(%opt)

C<< NativeVNC::Test::PrivateHost::start_sshd(%opt) >> or C<< NativeVNC::Test::PrivateHost::Sshd->start(%opt) >>:
sets root's password (C<root_password>, required) with C<set_password> (above), generates host keys (C<host_keys>,
default C<['ed25519']>; C<ecdsa>, C<rsa> also work) and runs Debian's C<< /usr/sbin/sshd -D -e -f CONFIG >>
in its own process group, with a configuration of its own (not F</etc/ssh/sshd_config>):

  Port 22                          # port option
  ListenAddress 127.0.0.1          # one line per listen address (listen: a string or an array)
  HostKey TMP/ssh_host_ed25519_key
  PidFile TMP/sshd.pid
  PermitRootLogin yes
  PasswordAuthentication yes
  KbdInteractiveAuthentication no
  UsePAM no                        # passwords checked against /etc/shadow by sshd itself
  PrintMotd no
  Subsystem sftp internal-sftp
  ...                              # config: array of further lines

Its output (C<-e>: the log, C<Accepted password for root ...>, C<Failed password ...>, lines ending in
C<\r\n>) goes to C<log_path> in a temporary directory under F</tmp> (kept after the run when
C<NATIVEVNC_KEEP_TMP> is set). Waits (at most C<start_timeout> seconds, default 20) until every listen address
accepts a connection and sends an C<SSH-2.0-> banner; dies with the log's tail if sshd exits first. Only
inside a private host.

=head2 port, listen, log_path, log, config_path, pid

The port, the listen addresses (a list), the log file, its contents, the configuration file, the process
(also its process group).

=head2 alive

True while sshd has not exited: C<alive> from L<NativeVNC::Test::Util>.

=head2 stop($timeout = 10)

SIGTERM to sshd's process group, at most C<$timeout> seconds, then SIGKILL, reaped; then SIGKILL to what
remains of the processes it had started (connections and the commands they run are in sessions of their
own), and a wait (at most 10 s) until they are dead. DESTROY calls it.

=cut

package NativeVNC::Test::PrivateHost::Sshd;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::IP;

use NativeVNC::Test::Util qw(wait_until spawn_group stop_group alive file_tail slurp proc_stat);

my $SSHD = '/usr/sbin/sshd';

sub start ($class, %opt) {
    croak 'start_sshd: not inside a private host' unless NativeVNC::Test::PrivateHost::inside();
    croak 'start_sshd: root_password is required' unless defined $opt{root_password};
    croak "start_sshd: $SSHD missing: run tools/install-deps (openssh-server)" unless -x $SSHD;
    my $tmp = tempdir('nativevnc-sshd-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{NATIVEVNC_KEEP_TMP});
    my @listen = ref $opt{listen} ? @{ $opt{listen} } : ($opt{listen} // '127.0.0.1');
    my $self = bless { tmp => $tmp, owner => $$, port => $opt{port} // 22, listen => \@listen }, $class;

    NativeVNC::Test::PrivateHost::set_password('root', $opt{root_password});
    mkdir '/run/sshd', 0755 unless -d '/run/sshd';    # privilege separation directory, compiled in
    my @keys;
    for my $type (@{ $opt{host_keys} // ['ed25519'] }) {
        my $key = "$tmp/ssh_host_${type}_key";
        my $out = NativeVNC::Test::PrivateHost::_capture(
            ['ssh-keygen', '-q', '-t', $type, '-N', '', '-C', 'nativevnc-private-host', '-f', $key]);
        croak "start_sshd: ssh-keygen -t $type failed: $out" if $?;
        push @keys, $key;
    }
    $self->_write_config(\@keys, $opt{config} // []);
    my $check = NativeVNC::Test::PrivateHost::_capture([$SSHD, '-t', '-f', $self->config_path]);
    croak "start_sshd: sshd rejects its configuration: $check" if $?;

    $self->{pid} = spawn_group([$SSHD, '-D', '-e', '-f', $self->config_path], log => $self->log_path);
    for my $address (@listen) {
        wait_until($opt{start_timeout} // 20, "sshd answering on $address port $self->{port}", sub {
            $self->_check_alive;
            return _banner($address, $self->{port});
        });
    }
    return $self;
}

sub _write_config ($self, $keys, $extra) {
    my @lines = (
        "Port $self->{port}",
        (map { "ListenAddress $_" } @{ $self->{listen} }),
        (map { "HostKey $_" } @$keys),
        "PidFile $self->{tmp}/sshd.pid",
        'PermitRootLogin yes',
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'PrintMotd no',
        'Subsystem sftp internal-sftp',
        @$extra,
    );
    open my $fh, '>', $self->config_path or croak "$self->{tmp}/sshd_config: $!";
    print {$fh} map { "$_\n" } @lines;
    close $fh or croak "$self->{tmp}/sshd_config: $!";
}

# The server's identification line, or undef when nothing (or no SSH server) answers yet.
sub _banner ($address, $port) {
    my $sock = IO::Socket::IP->new(PeerHost => $address, PeerPort => $port, Timeout => 2) or return undef;
    return undef unless IO::Select->new($sock)->can_read(5);
    my $line = <$sock> // return undef;
    return $line =~ /^SSH-2\.0-/ ? $line : undef;
}

sub _check_alive ($self) {
    return if $self->alive;
    croak sprintf "sshd exited (wait status %s); its log ends with:\n%s", $self->{exit_status} // '?',
      file_tail($self->log_path);
}

sub port ($self) { return $self->{port} }
sub listen ($self) { return @{ $self->{listen} } }
sub log_path ($self) { return "$self->{tmp}/sshd.log" }
sub config_path ($self) { return "$self->{tmp}/sshd_config" }
sub pid ($self) { return $self->{pid} }

sub log ($self) {
    return slurp($self->log_path) // '';
}

sub stop ($self, $timeout = 10) {
    return unless $self->{pid} && $$ == $self->{owner};
    my %tree = _descendants($self->{pid});
    $self->{exit_status} = stop_group($self->{pid}, timeout => $timeout);
    delete $self->{pid};
    # Same pid and same start time: still the process we saw, not a new one with a reused pid.
    my $left = sub () { grep { (_running_since($_) // '') eq $tree{$_} } keys %tree };
    kill 'KILL', $left->();
    wait_until(10, 'the processes sshd started dead', sub { !$left->() });
}

# pid => start time of every live descendant of $root, from /proc.
sub _descendants ($root) {
    my (%children, %start);
    for my $pid (map { m{/proc/(\d+)} } glob '/proc/[0-9]*') {
        my @fields = proc_stat($pid) or next;
        push @{ $children{ $fields[1] } }, $pid;
        $start{$pid} = $fields[19];
    }
    my (%tree, @todo);
    @todo = @{ $children{$root} // [] };
    while (defined(my $pid = shift @todo)) {
        $tree{$pid} = $start{$pid};
        push @todo, @{ $children{$pid} // [] };
    }
    return %tree;
}

# The start time of process $pid, undef when it does not exist or is a zombie.
sub _running_since ($pid) {
    my @fields = proc_stat($pid) or return undef;
    return $fields[0] eq 'Z' ? undef : $fields[19];
}

sub DESTROY ($self) {
    return unless ($self->{owner} // 0) == $$;
    local ($@, $?, $!);
    eval { $self->stop };
}

1;
