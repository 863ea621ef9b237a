#!/usr/bin/perl
# The private host of t/lib/NativeVNC/Test/PrivateHost.pm: this test re-runs itself in its own network, mount
# and PID namespaces over a private copy of the root file system. Inside, it binds 127.0.0.1:22 and :443,
# starts OpenSSH with a root password of its choosing and logs in with Net::SSH2 the way os-autoinst's svirt
# backend does, writes /vmfs and /usr/local/bin, and checks enter's contract (output, exit status, timeout,
# refusals) with nested runs. Outside, after the inner run (enter's `after` hook, reported as TAP comments
# and the exit status), it checks that the host did not change: no /vmfs, /etc/shadow byte for byte the same,
# no new listener on port 22 or 443, no process left from the private host. Needs root and openssh-server.
use v5.36;
use Test::More;
use Cwd qw(getcwd);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::IP;
use JSON::PP ();
use Net::SSH2;
use Time::HiRes qw(time);

use lib 't/lib';
use NativeVNC::Test::PrivateHost;
use NativeVNC::Test::Util qw(repo_root wait_until slurp proc_stat);

my $PASSWORD = 'Esx:r00t/pw 42';
my $HELLO = '/usr/local/bin/nativevnc-private-hello';
my $REPORT_VAR = 'NATIVEVNC_T03_REPORT';

# --- The host's side: its state before the run, checked again after it ---

# "address:port" of every TCP socket listening on port 22 or 443 in this network namespace.
sub listeners () {
    my @found;
    for my $table ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $table or next;
        while (<$fh>) {
            my (undef, $local, undef, $state) = split ' ';
            my ($address, $port) = split /:/, $local // '';
            next unless ($state // '') eq '0A' && ($port eq '0016' || $port eq '01BB');
            push @found, "$address:" . hex $port;
        }
    }
    return join ' ', sort @found;
}

sub processes_where ($test) {
    my @found;
    for my $dir (glob '/proc/[0-9]*') {
        push @found, $dir =~ s{/proc/}{}r if $test->($dir);
    }
    return @found;
}

# True while process $pid exists and is not a zombie.
sub running ($pid) {
    my ($state) = proc_stat($pid);
    return defined $state && $state ne 'Z';
}

sub host_state () {
    return { shadow => slurp('/etc/shadow'), vmfs => -e '/vmfs', hello => -e $HELLO, listeners => listeners() };
}

sub host_unchanged ($before, $report_file, $code) {
    my @failed;
    my $check = sub ($ok, $what) {
        print $ok ? "# host after the private host: $what\n" : '';
        push @failed, $what unless $ok;
    };
    my $report = eval { JSON::PP::decode_json(slurp($report_file) // '') } // {};
    my $after = host_state();
    $check->($report->{pid_ns}, 'the inner run reported its PID namespace and sshd configuration');
    $check->(!$after->{vmfs}, 'no /vmfs');
    $check->(!$after->{hello}, "no $HELLO");
    $check->(defined $after->{shadow} && $after->{shadow} eq $before->{shadow},
        '/etc/shadow unchanged, byte for byte');
    $check->($after->{listeners} eq $before->{listeners},
        'listening sockets on ports 22 and 443 as before: ' . ($after->{listeners} || 'none'));
    $check->(!IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => 22, Timeout => 2) || $before->{listeners},
        'nothing accepts connections on 127.0.0.1:22');
    my @left = processes_where(sub ($dir) { (readlink("$dir/ns/pid") // '') eq ($report->{pid_ns} // '-') });
    $check->(!@left, 'no process left in the private host\'s PID namespace' . (@left ? ": @left" : ''));
    my @configs = @{ $report->{sshd_configs} // [] };
    my @sshd = processes_where(sub ($dir) {
        my $cmdline = slurp("$dir/cmdline") // '';
        return grep { index($cmdline, $_) >= 0 } @configs;
    });
    $check->(@configs && !@sshd, 'no sshd the test started is running' . (@sshd ? ": @sshd" : ''));
    print STDERR "# host check failed: $_\n" for @failed;
    return $code || (@failed ? 1 : 0);
}

if (!NativeVNC::Test::PrivateHost::inside()) {
    my $outer_tmp = tempdir('nativevnc-t03-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    $ENV{$REPORT_VAR} = "$outer_tmp/report.json";
    my $before = host_state();
    NativeVNC::Test::PrivateHost::enter(timeout => 180,
        after => sub ($code) { host_unchanged($before, "$outer_tmp/report.json", $code) });
}

# --- Inside the private host ---

$SIG{ALRM} = sub { diag 'test did not finish within 150 s'; exit 1 };
alarm 150;

my %report = (pid_ns => readlink('/proc/self/ns/pid'), sshd_configs => []);

sub error_of ($code) { eval { $code->(); 1 } ? '' : $@ }

# Runs perl -It/lib @args (or @args when they start with setpriv), with NATIVEVNC_PRIVATE_HOST set to $marker
# or unset; returns (exit code, stdout, stderr, seconds).
sub perl_run ($marker, @args) {
    my $dir = tempdir(CLEANUP => 1);
    my @command = $args[0] eq 'setpriv' ? @args : ($^X, '-It/lib', @args);
    my $started = time;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{NATIVEVNC_PRIVATE_HOST} = $marker;
        delete $ENV{NATIVEVNC_PRIVATE_HOST} unless defined $marker;
        open STDOUT, '>', "$dir/out" or die "$dir/out: $!";
        open STDERR, '>', "$dir/err" or die "$dir/err: $!";
        exec { $command[0] } @command or die "exec $command[0]: $!";
    }
    waitpid $pid, 0;
    return ($? >> 8, slurp("$dir/out"), slurp("$dir/err"), time - $started);
}

subtest 'a host of its own' => sub {
    ok(NativeVNC::Test::PrivateHost::inside(), 'inside() is true');
    like(slurp('/proc/1/cmdline'), qr/PrivateHost::_init/, 'PID 1 is the private host\'s init');
    my ($root) = grep { (split ' ')[4] eq '/' } split /\n/, slurp('/proc/self/mountinfo');
    like($root, qr/ - overlay /, 'the root file system is an overlay');
    is(getcwd(), repo_root(), 'the test runs in the repository');
    isnt((stat repo_root())[0], (stat '/')[0], 'which is the host\'s, bound in, not the private copy');
    ok(-d dirname($ENV{$REPORT_VAR}), 'the host\'s temporary directory is shared');
    for my $port (22, 443) {
        my $sock = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => $port, Listen => 1, ReuseAddr => 1);
        ok($sock, "127.0.0.1:$port can be bound") or diag "bind: $!";
    }
};

subtest 'write_file: the private root only' => sub {
    is(NativeVNC::Test::PrivateHost::write_file($HELLO, "#!/bin/sh\necho hello from the private host\n", 0755),
        $HELLO, 'a program into /usr/local/bin');
    is((stat $HELLO)[2] & 07777, 0755, 'with the mode asked for');
    is(`$HELLO`, "hello from the private host\n", 'and it runs');
    like(error_of(sub { NativeVNC::Test::PrivateHost::write_file('/tmp/nativevnc-t03-refused', 'x') }),
        qr{^write_file\(/tmp/nativevnc-t03-refused\): /tmp is shared with the host}, '/tmp is refused');
    like(error_of(sub { NativeVNC::Test::PrivateHost::write_file(repo_root() . '/t/new/file', 'x') }),
        qr{is shared with the host}, 'the repository is refused');
    ok(!-e repo_root() . '/t/new', 'and nothing was created there');
};

subtest 'OpenSSH on port 22 with root\'s password, as the svirt backend logs in' => sub {
    my $sshd = NativeVNC::Test::PrivateHost::start_sshd(root_password => $PASSWORD,
        listen => ['127.0.0.1', '127.0.0.2']);
    push @{ $report{sshd_configs} }, $sshd->config_path;
    is($sshd->port, 22, 'port 22');
    is_deeply([$sshd->listen], ['127.0.0.1', '127.0.0.2'], 'on two addresses');

    my $ssh = Net::SSH2->new(timeout => 20_000);
    ok($ssh->connect('127.0.0.1', 22), 'Net::SSH2 connects to 127.0.0.1:22');
    ok($ssh->auth(username => 'root', password => $PASSWORD) && $ssh->auth_ok, 'root logs in with the password');
    my $chan = $ssh->channel;
    $chan->exec("id -u; mkdir -p /vmfs/volumes/datastore1 && echo x > /vmfs/volumes/datastore1/f; "
          . 'nativevnc-private-hello');
    my $out = '';
    while ($chan->read(my $buffer, 4096)) { $out .= $buffer }
    $chan->close;
    is($out, "0\nhello from the private host\n", 'commands run as uid 0 and find /usr/local/bin in PATH');
    is($chan->exit_status, 0, 'exit status 0');
    is(slurp('/vmfs/volumes/datastore1/f'), "x\n", 'the file written over SSH is in the private /vmfs');

    my $tty = $ssh->channel;
    $tty->pty('vt100');
    $tty->exec('tty');
    my $name = '';
    while ($tty->read(my $buffer, 4096)) { $name .= $buffer }
    like($name, qr{^/dev/pts/\d+\r?\n$}, 'a session with a pseudo-terminal');

    my $sleeper = $ssh->channel;
    $sleeper->exec('exec sleep 1003');
    my $sleeping = sub () { processes_where(sub ($dir) { (slurp("$dir/cmdline") // '') eq "sleep\0001003\0" }) };
    wait_until(10, 'the command started over SSH', sub { scalar $sleeping->() });
    my @sleep = $sleeping->();

    my $wrong = Net::SSH2->new(timeout => 20_000);
    $wrong->connect('127.0.0.1', 22);
    ok(!$wrong->auth(username => 'root', password => "$PASSWORD!") && !$wrong->auth_ok,
        'a wrong password is refused');

    my $second = Net::SSH2->new(timeout => 20_000);
    ok($second->connect('127.0.0.2', 22) && $second->auth(username => 'root', password => $PASSWORD),
        'root logs in on 127.0.0.2 too');

    like($sshd->log, qr/^Accepted password for root from 127\.0\.0\.1 port \d+ ssh2\r?$/m, 'sshd logs the login');
    like($sshd->log, qr/^Failed password for root from 127\.0\.0\.1/m, 'and the failed one');
    unlike($sshd->log, qr/\Q$PASSWORD\E|r00t/, 'but never the password');

    $sshd->stop;
    ok(!IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => 22, Timeout => 2),
        'after stop, port 22 is closed');
    my $config = $sshd->config_path;
    is_deeply([processes_where(sub ($dir) { index(slurp("$dir/cmdline") // '', $config) >= 0 })], [],
        'no sshd process is left');
    ok(@sleep && !grep({ running($_) } @sleep), 'the command it ran for the session is dead too');

    {
        my $scoped = NativeVNC::Test::PrivateHost::start_sshd(root_password => $PASSWORD, port => 2222);
        push @{ $report{sshd_configs} }, $scoped->config_path;
        is($scoped->port, 2222, 'another one on port 2222');
    }
    ok(!IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => 2222, Timeout => 2),
        'stopped when it goes out of scope');
};

subtest 'enter: output, exit status, timeout, refusals' => sub {
    my $inner = 'use NativeVNC::Test::PrivateHost; BEGIN { NativeVNC::Test::PrivateHost::enter(timeout => 1) }';

    my ($code, $out, $err, $took) = perl_run(undef, '-e', $inner . ' print "nested output\\n";'
          . ' print STDERR "# to stderr\\n";'
          . ' print NativeVNC::Test::PrivateHost::inside() ? "inside\\n" : "outside\\n";'
          . ' exit 7');
    is($code, 7, 'a nested private host: the exit status comes out');
    is($out, "nested output\ninside\n", 'standard output unchanged, nothing from the outer side');
    is($err, "# to stderr\n", 'standard error too');
    note sprintf 'nested run: %.2f s', $took;

    ($code, $out, $err, $took) = perl_run(undef, '-e', "$inner sleep 60");
    isnt($code, 0, 'a run beyond its timeout fails');
    like($err, qr/the test did not finish within 1s, stopping it/, 'saying why');
    cmp_ok($took, '<', 20, 'within the timeout and the grace period');
    note sprintf 'run stopped after its timeout: %.2f s', $took;

    ($code, undef, $err) = perl_run(undef, '-e',
        'use NativeVNC::Test::PrivateHost; NativeVNC::Test::PrivateHost::enter(share => ["/nonexistent-t03"])');
    isnt($code, 0, 'a missing shared directory fails');
    like($err, qr{shared directory /nonexistent-t03 does not exist}, 'naming it');

    # The harness modules copied where user nobody can read them, wherever the repository is.
    my $lib = tempdir(CLEANUP => 1);
    make_path("$lib/NativeVNC/Test", { mode => 0755 });
    chmod 0755, $lib;
    copy(repo_root() . "/t/lib/NativeVNC/Test/$_.pm", "$lib/NativeVNC/Test/$_.pm") or die "copy $_: $!"
      for qw(PrivateHost Util);
    ($code, undef, $err) = perl_run(undef, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--',
        $^X, "-I$lib", '-e', 'use NativeVNC::Test::PrivateHost; NativeVNC::Test::PrivateHost::enter()');
    isnt($code, 0, 'not root: fails');
    like($err, qr/needs root/, 'saying root is needed');

    ($code, undef, $err) = perl_run(undef, '-e', 'use NativeVNC::Test::PrivateHost; '
          . 'NativeVNC::Test::PrivateHost::write_file("/usr/local/bin/x", "x")');
    like($err, qr/not inside a private host/, 'write_file outside a private host is refused');
    ($code, undef, $err) = perl_run(undef, '-e', 'use NativeVNC::Test::PrivateHost; '
          . 'NativeVNC::Test::PrivateHost::start_sshd(root_password => "x")');
    like($err, qr/not inside a private host/, 'and so is start_sshd');

    my $here = join ' ', map { readlink "/proc/self/ns/$_" } qw(mnt net);
    ($code, $out) = perl_run($here, '-e',
        'use NativeVNC::Test::PrivateHost; print NativeVNC::Test::PrivateHost::inside()');
    is($out, '0', 'a process that inherited the marker in the same namespaces is not inside');
};

open my $fh, '>', $ENV{$REPORT_VAR} or die "$ENV{$REPORT_VAR}: $!";
print {$fh} JSON::PP::encode_json(\%report);
close $fh;

done_testing;
