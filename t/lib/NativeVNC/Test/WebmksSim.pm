package NativeVNC::Test::WebmksSim;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::UNIX;
use IPC::Open3 qw(open3);
use JSON::PP ();
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM);
use Symbol qw(gensym);
use Time::HiRes qw(time);

use NativeVNC::Test::Util qw(repo_root wait_until spawn_group stop_group alive file_tail);

=encoding utf8

=head1 NAME

NativeVNC::Test::WebmksSim - the webmks simulator (a fake ESXi host or vCenter) for the tests

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::WebmksSim;

  my $sim = NativeVNC::Test::WebmksSim->start(
      vnc_host => $guest->vnc_host, vnc_port => $guest->vnc_port,   # the real VNC server behind the console
      password => 'secret',                                         # SOAP password of user root
      args     => ['--flavour', 'vcenter', '--vm', 'sut,moid=vm-7'],
  );
  my $url = $sim->url(vm => 'sut');          # https://root:secret@127.0.0.1:PORT/?name=sut
  say $sim->sha1, ' ', $sim->sha256;         # the certificate's thumbprints, AB:CD:…
  $sim->control('freeze');                   # POST /_sim/freeze
  $sim->control('refuse-tickets', n => 2);   # POST /_sim/refuse-tickets?n=2
  $sim->fault(close => 1011, reason => 'MKS crashed');   # POST /_sim/fault?close=1011&reason=MKS%20crashed
  $sim->fault(oversize => 2**30, next => 1);  # the next console connection, after its first update
  is $sim->stats->{logins}, 1;               # GET /_sim/stats, decoded
  $sim->stop;                                # also done by DESTROY

  # A standalone ESXi host for libvirt: datastores, guests booting tools/build-guest's kernel.
  my $esx = NativeVNC::Test::WebmksSim->start(password => 'secret', esxi_version => '6.5',
      datastores => { datastore1 => $dir }, guests => 1, mks_delay => 3);
  my ($status, $out, $err) = $esx->virsh('define', $xml_file);   # virsh -c esx://root@127.0.0.1:PORT/...
  my $running = $esx->guests;                # GET /_sim/guests: { MOID => { pid, qmp, log } }
  my $state = $esx->qmp($moid, 'query-status');   # QMP on QMP_DIR/MOID.sock

=head1 DESCRIPTION

Runs F<target/release/webmks-sim> (see C<webmks-sim --help>) in its own process group, listening on
127.0.0.1 with a fresh self-signed certificate, written to C<cert_file>. Its stdout and stderr (the start line
and the request log) go to C<log_path> in a temporary directory, removed at exit unless C<NATIVEVNC_KEEP_TMP>
is set.

=head1 METHODS

=head2 start(%opt)

Starts the simulator and waits (at most C<start_timeout> seconds, default 20) for its start line. Options:
C<password> (required), C<user> (default root), C<listen_host> (the loopback address to listen on, default
127.0.0.1; tickets name it unless C<--ticket-host> says otherwise), C<vnc_host> and C<vnc_port> (the VNC server behind the consoles of
C<--vm> VMs; without them their /ticket cannot be served), C<vnc_password>, C<port> (fixed port, default: any free
one), C<esxi_version> (C<--esxi-version>), C<datastores> (hash of datastore names to directories, C<--datastore
NAME=DIR>), C<guests> (true: powered-on VMs boot the guest of F<tools/build-guest>, with their QMP sockets in
C<qmp_dir>; dies when the guest is not built), C<mks_delay> (C<--mks-delay>), C<cert> and C<key> (PEM files of the
certificate to present instead of a fresh one, C<--cert> and C<--key>), C<args> (array of further command-line
options). Dies with the log's tail if the program is missing or exits.

=cut

sub binary ($class = undef) {
    return repo_root() . '/target/release/webmks-sim';
}

sub start ($class, %opt) {
    croak 'password is required' unless defined $opt{password};
    my $binary = binary();
    croak "$binary missing: build it (cargo build --release --workspace, or make)" unless -x $binary;
    my $tmp = tempdir('nativevnc-webmks-sim-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{NATIVEVNC_KEEP_TMP});
    my $self = bless { opt => \%opt, tmp => $tmp, owner => $$, user => $opt{user} // 'root' }, $class;
    my @command = (
        $binary, '--listen', ($opt{listen_host} // '127.0.0.1') . ':' . ($opt{port} // 0),
        '--user', $self->{user}, '--cert-out', $self->cert_file,
    );
    push @command, '--vnc', "$opt{vnc_host}:$opt{vnc_port}" if defined $opt{vnc_port};
    push @command, '--esxi-version', $opt{esxi_version} if defined $opt{esxi_version};
    push @command, map { ('--datastore', "$_=$opt{datastores}{$_}") } sort keys %{ $opt{datastores} // {} };
    push @command, '--mks-delay', $opt{mks_delay} if defined $opt{mks_delay};
    push @command, '--cert', $opt{cert}, '--key', $opt{key} if defined $opt{cert};
    if ($opt{guests}) {
        my $guest = repo_root() . '/build/guest';
        -s "$guest/$_" or croak "$guest/$_ missing: run tools/build-guest first" for qw(vmlinuz initrd.gz);
        mkdir $self->qmp_dir or croak "$self->{tmp}/qmp: $!";
        push @command, '--guest-kernel', "$guest/vmlinuz", '--guest-initrd', "$guest/initrd.gz",
          '--qmp-dir', $self->qmp_dir;
    }
    push @command, @{ $opt{args} // [] };
    $self->{command} = \@command;
    local $ENV{WEBMKS_SIM_PASSWORD} = $opt{password};
    local $ENV{WEBMKS_SIM_VNC_PASSWORD} = $opt{vnc_password} if defined $opt{vnc_password};
    $self->{pid} = spawn_group(\@command, log => $self->log_path);
    my $line = wait_until($opt{start_timeout} // 20, 'webmks-sim start line', sub {
        $self->_check_alive;
        open my $fh, '<', $self->log_path or return;
        while (my $l = <$fh>) {
            return $l if $l =~ /^webmks-sim listening on /;
        }
        return;
    });
    $line =~ m{^webmks-sim listening on https://([^/]+):(\d+)/sdk sha1=([0-9A-F:]+) sha256=([0-9A-F:]+)$}
      or croak "unexpected start line: $line";
    @$self{qw(host port sha1 sha256)} = ($1, $2, $3, $4);
    return $self;
}

sub _check_alive ($self) {
    return if $self->alive;
    croak sprintf "webmks-sim exited (wait status %s); its log ends with:\n%s", $self->{exit_status} // '?',
      file_tail($self->log_path);
}

=head2 host, port, sha1, sha256, cert_file, log_path, qmp_dir, pid, command, user, password

Where it listens (C<127.0.0.1> or C<listen_host>, and the port from the start line), the certificate's thumbprints (uppercase hex
pairs joined by C<:>), the PEM certificate (usable as a CA file), the log, the directory of the guests' QMP
sockets (with C<guests>), the process (also its process group), the command line (array ref), and the SOAP
credentials.

=cut

sub host ($self) { return $self->{host} }
sub port ($self) { return $self->{port} }
sub sha1 ($self) { return $self->{sha1} }
sub sha256 ($self) { return $self->{sha256} }
sub cert_file ($self) { return "$self->{tmp}/cert.pem" }
sub log_path ($self) { return "$self->{tmp}/webmks-sim.log" }
sub qmp_dir ($self) { return "$self->{tmp}/qmp" }
sub pid ($self) { return $self->{pid} }
sub command ($self) { return $self->{command} }
sub user ($self) { return $self->{user} }
sub password ($self) { return $self->{opt}{password} }

=head2 alive

True while the process has not exited (reaps it if it has): C<alive> from L<NativeVNC::Test::Util>.

=cut

=head2 url(%opt)

An API URL with credentials: C<https://USER:PASSWORD@HOST:PORT/> followed by C<moid> (C<< moid => 'vm-7' >>
gives C</vm-7>), C<?name=VM> (C<< vm => 'sut' >>) or C<?path=PATH> (C<< path => 'DC0/vm/sut' >>). Options C<user> and C<password> override the simulator's;
C<scheme> replaces C<https>; C<host> and C<port> replace the simulator's (to reach it through a relay). User and
password are percent-encoded.

=cut

sub _escape ($s) {
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub url ($self, %opt) {
    my $auth = join ':', _escape($opt{user} // $self->user), _escape($opt{password} // $self->password);
    my $target =
        defined $opt{moid} ? _escape($opt{moid})
      : defined $opt{vm} ? '?name=' . _escape($opt{vm})
      : defined $opt{path} ? '?path=' . _escape($opt{path})
      : '';
    return sprintf '%s://%s@%s:%d/%s', $opt{scheme} // 'https', $auth, $opt{host} // $self->host,
      $opt{port} // $self->port, $target;
}

sub _http ($self) {
    return $self->{http} //= HTTP::Tiny->new(timeout => 10, verify_SSL => 0, agent => 'NativeVNC-tests');
}

=head2 control($action, %query)

C<POST /_sim/$action> with the query (C<close>, C<stall>, C<freeze>, C<thaw>, C<< refuse-tickets => n => N >>,
C<< close-after-keys => n => N >>, C<fault>: see L</fault(%query)>); returns the response text, dies on a non-2xx status.

=cut

sub control ($self, $action, %query) {
    my $url = sprintf 'https://%s:%d/_sim/%s', $self->host, $self->port, $action;
    $url .= '?' . join '&', map { "$_=" . _escape($query{$_}) } sort keys %query if %query;
    my $r = $self->_http->post($url);
    croak "POST /_sim/$action: $r->{status} $r->{reason}: $r->{content}" unless $r->{success};
    return $r->{content};
}

=head2 fault(%query)

C<POST /_sim/fault> with the query: C<< close => CODE, reason => TEXT >> ends the open webmks connections with a
WebSocket close frame of that code (1000 to 4999 but 1004, 1005, 1006 and 1015) and reason (at most 123 bytes);
C<< oversize => BYTES >> makes them announce a binary message of BYTES bytes (the frame header and the first
64 KiB) and drop the connection. C<< next => 1 >> keeps the fault for the next connection, which suffers it
right after its first framebuffer update. Returns the response text, dies on a non-2xx status (a bad code, a
reason too long).

=cut

sub fault ($self, %query) { return $self->control('fault', %query) }

=head2 stats

C<GET /_sim/stats>, decoded: a hash of counters (C<logins>, C<failed_logins>, C<logouts>, C<tickets_issued>,
C<tickets_used>, C<tickets_rejected>, C<sessions_open>, C<sessions_total>, C<updates_sent>, C<key_events>,
C<vmw_key_events>, C<pointer_events>, C<wheel_events>, C<set_pixel_format_ignored>) and C<last_set_encodings>
(array).

=cut

sub stats ($self) {
    my $r = $self->_http->get(sprintf 'https://%s:%d/_sim/stats', $self->host, $self->port);
    croak "GET /_sim/stats: $r->{status} $r->{reason}: $r->{content}" unless $r->{success};
    return JSON::PP::decode_json($r->{content});
}

=head2 guests

C<GET /_sim/guests>, decoded: the running guests by VM moid, each C<{pid, qmp, log}> (QEMU's process id, its QMP
socket and its log).

=cut

sub guests ($self) {
    my $r = $self->_http->get(sprintf 'https://%s:%d/_sim/guests', $self->host, $self->port);
    croak "GET /_sim/guests: $r->{status} $r->{reason}: $r->{content}" unless $r->{success};
    return JSON::PP::decode_json($r->{content});
}

=head2 esx_uri

The libvirt URI of the simulated host, C<esx://USER@127.0.0.1:PORT/?no_verify=1&authfile=FILE>; the auth file
(C<[credentials-vmware]> with the user and password, C<[auth-esx-127.0.0.1]>) is written on first use.

=cut

sub esx_uri ($self) {
    my $authfile = "$self->{tmp}/libvirt-auth.conf";
    unless (-e $authfile) {
        open my $fh, '>', $authfile or croak "$authfile: $!";
        chmod 0600, $authfile;
        printf $fh "[credentials-vmware]\nusername=%s\npassword=%s\n\n[auth-esx-%s]\ncredentials=vmware\n",
          $self->user, $self->password, $self->host;
        close $fh or croak "$authfile: $!";
    }
    return sprintf 'esx://%s@%s:%d/?no_verify=1&authfile=%s', _escape($self->user), $self->host, $self->port,
      $authfile;
}

=head2 virsh(@args)

Runs C<virsh -c ESX_URI @args> (libvirt's esx driver against the simulator), killed after 120 s (a final hash
ref C<< {timeout => N} >> changes that). Returns C<($status, $stdout, $stderr)>, C<$status> being the exit code
(-1 after a timeout).

=cut

sub virsh ($self, @args) {
    my $timeout = ref $args[-1] eq 'HASH' ? (pop @args)->{timeout} : 120;
    my $pid = open3(my $in, my $out, my $err = gensym, 'virsh', '-c', $self->esx_uri, @args);
    close $in;
    my %text = (out => '', err => '');
    my %fh = (out => $out, err => $err);
    my $select = IO::Select->new($out, $err);
    my $deadline = time + $timeout;
    while ($select->count && time < $deadline) {
        for my $ready ($select->can_read($deadline - time)) {
            my ($name) = grep { $fh{$_} == $ready } keys %fh;
            sysread($ready, $text{$name}, 65536, length $text{$name}) or $select->remove($ready);
        }
    }
    my $timed_out = $select->count > 0;
    kill 'KILL', $pid if $timed_out;
    waitpid $pid, 0;
    return ($timed_out ? -1 : $? >> 8, $text{out}, $text{err});
}

=head2 qmp($moid, $command, \%arguments = undef, $timeout = 10)

Runs one QMP command on the QMP socket of the running VM C<$moid> (C<QMP_DIR/MOID.sock>) and returns the
decoded C<return> value; dies with QEMU's error class and description.

=cut

sub qmp ($self, $moid, $command, $arguments = undef, $timeout = 10) {
    my $path = $self->qmp_dir . "/$moid.sock";
    my $sock = IO::Socket::UNIX->new(Peer => $path, Type => SOCK_STREAM) or croak "$path: $!";
    my $json = JSON::PP->new->canonical;
    my $deadline = time + $timeout;
    my $buffer = '';
    my $next = sub ($what) {
        my $select = IO::Select->new($sock);
        while (1) {
            while ($buffer =~ s/\A([^\n]*)\n//) {
                my $message = $json->decode($1);
                return $message unless $message->{event};
            }
            my $left = $deadline - time;
            croak "QMP $what on $path did not answer within ${timeout}s" if $left <= 0 || !$select->can_read($left);
            sysread($sock, $buffer, 65536, length $buffer) or croak "QMP $what on $path: connection closed";
        }
    };
    $next->('greeting')->{QMP} or croak "$path: not a QMP greeting";
    for my $request ({ execute => 'qmp_capabilities' }, { execute => $command, ($arguments ? (arguments => $arguments) : ()) }) {
        print {$sock} $json->encode($request), "\n";
        my $reply = $next->($request->{execute});
        croak "QMP $request->{execute} failed: $reply->{error}{class}: $reply->{error}{desc}" if $reply->{error};
        return $reply->{return} if $request->{execute} eq $command;
    }
}

=head2 stop($timeout = 10)

SIGTERM to the process group, at most C<$timeout> seconds to exit, then SIGKILL; reaped. DESTROY calls it.

=cut

sub stop ($self, $timeout = 10) {
    return unless $self->{pid} && $$ == $self->{owner};
    $self->{exit_status} = stop_group($self->{pid}, timeout => $timeout);
    delete $self->{pid};
}

sub DESTROY ($self) {
    return unless ($self->{owner} // 0) == $$;
    local ($@, $?, $!);
    eval { $self->stop };
}

1;
