#!/usr/bin/perl
# Tickets that name a host the client cannot resolve: webmks-sim writes esx1.invalid (.invalid never resolves)
# into its tickets. Pinned to the ticket's thumbprints, the console is reached at the vSphere API's address;
# a ticket without thumbprints (CA verification) fails with a message naming the fix, and a host map
# (VMWARE_VNC_OVER_WS_HOSTS, --ticket-hosts) reaches it in every mode. Screens are compared with QEMU's
# screendump.
use v5.36;
use Test::More;
use File::Temp 'tempdir';

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log error_of message_of);
use NativeVNC::Test::Guest;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Image qw(read_ppm differing_pixels);
use NativeVNC::Test::Util qw(repo_root spawn_group stop_group wait_until file_tail);

use consoles::NativeVNC;

deadline(300);
my @log;
capture_log(diag => \@log, warn => \@log);

my $password = 'Sim:p@ss/w0rd';
my $tmp = tempdir(CLEANUP => 1);
my $nativevnc = repo_root() . '/target/release/nativevnc';
my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;

# The certificate also names esx1.invalid, so that CA verification of the console can succeed once mapped.
sub sim (@args) {
    return NativeVNC::Test::WebmksSim->start(
        vnc_host => $guest->vnc_host,
        vnc_port => $guest->vnc_port,
        password => $password,
        args => ['--vm', 'sut,moid=7', '--ticket-host', 'esx1.invalid', '--hostname', 'esx1.invalid', @args]);
}

my $pinned = sim();
my $ca_only = sim('--no-ticket-thumbprints');
my $fallback =
  qr/the ticket's host esx1\.invalid does not resolve; connecting to the vSphere API's address 127\.0\.0\.1 instead/;
my $mapped = qr/the ticket's host esx1\.invalid is mapped to 127\.0\.0\.1 \(ticket hosts\); connecting there/;

subtest 'pinned to the ticket\'s thumbprints: the API\'s address replaces the unresolvable host' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $pinned->cert_file;
    @log = ();
    my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $pinned->url(moid => 7)});
    is($vnc->login, undef, 'login over webmks');
    is($guest->console_matches($vnc, 'the screen through the fallback'), 0, 'the screen equals QEMU\'s screendump');
    is(scalar(grep { /$fallback \(the console is pinned to the ticket's certificate\)\z/ } @log), 1, 'the log says so')
      or diag explain \@log;
    $vnc->socket(undef);
};

subtest 'insecure: the API\'s address replaces it too' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_INSECURE} = 1;
    @log = ();
    my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $ca_only->url(moid => 7)});
    is($vnc->login, undef, 'login over webmks');
    ok((grep { /$fallback \(TLS certificates are not verified\)\z/ } @log), 'the log says so') or diag explain \@log;
    $vnc->socket(undef);
};

subtest 'a mapped host goes to its address' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $pinned->cert_file;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_HOSTS} = 'esx9.invalid=192.0.2.1, ESX1.invalid=127.0.0.1';
    @log = ();
    my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $pinned->url(moid => 7)});
    is($vnc->login, undef, 'login over webmks');
    is($guest->console_matches($vnc, 'the screen through the map'), 0, 'the framebuffer equals QEMU\'s screendump');
    ok((grep { /$mapped/ } @log), 'the log names the mapping') or diag explain \@log;
    is(scalar(grep { /does not resolve/ } @log), 0, '... and no fallback');
    $vnc->socket(undef);
};

subtest 'verified by CA only: refused with the fix, unless mapped' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $ca_only->cert_file;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS} = 1;
    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 5;
    my $before = $ca_only->stats->{tickets_issued};
    my $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $ca_only->url(moid => 7)})->login });
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'the login fails');
    like(
        message_of($e),
        qr/\Qthe ticket's host esx1.invalid does not resolve; map it to an address the client can reach with \E
           \QVMWARE_VNC_OVER_WS_HOSTS=esx1.invalid=ADDRESS (--ticket-hosts esx1.invalid=ADDRESS)\E/x,
        '... saying the host does not resolve and how to map it');
    is($ca_only->stats->{tickets_issued} - $before, 1, '... at once, without retrying');

    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_HOSTS} = 'esx1.invalid=127.0.0.1';
    @log = ();
    my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $ca_only->url(moid => 7)});
    is($vnc->login, undef, 'mapped, the login works: the certificate is verified for the ticket\'s name');
    is($guest->console_matches($vnc, 'the screen verified by CA'), 0, 'the framebuffer equals QEMU\'s screendump');
    ok((grep { /$mapped/ } @log), 'the log names the mapping') or diag explain \@log;
    $vnc->socket(undef);
};

subtest 'nativevnc --ticket-hosts' => sub {
    my @common = ('--ca-file', $ca_only->cert_file, '--ticket-attempts', 0, '--connect-timeout', 5);
    my $out = "$tmp/cli.ppm";
    my $stderr = "$tmp/cli.err";
    system "$nativevnc screenshot @common --url '@{[$ca_only->url(moid => 7)]}' --out $out 2>$stderr";
    is($? >> 8, 1, 'without a map a CA-verified console is refused');
    like(do { local (@ARGV, $/) = $stderr; <> }, qr/does not resolve; .*--ticket-hosts esx1\.invalid=ADDRESS/,
        '... naming --ticket-hosts');
    system "$nativevnc screenshot @common --ticket-hosts esx1.invalid=127.0.0.1 --url '@{[$ca_only->url(moid => 7)]}'"
      . " --out $out 2>$stderr";
    is($?, 0, 'with --ticket-hosts it connects');
    is(scalar differing_pixels(read_ppm($out), $guest->screendump), 0, 'equals the screendump');
    like(do { local (@ARGV, $/) = $stderr; <> }, $mapped, 'and logs the mapping');
    system "$nativevnc screenshot --ticket-hosts esx1 --url '@{[$ca_only->url(moid => 7)]}' --out $out 2>$stderr";
    is($? >> 8, 2, 'a malformed map is a usage error');

    my $log = "$tmp/proxy.log";
    my $pid = spawn_group(
        [$nativevnc, 'proxy', '--listen', '127.0.0.1:0', @common[0, 1], '--ticket-hosts', 'esx1.invalid=127.0.0.1',
            '--url', $ca_only->url(moid => 7)],
        log => $log);
    my $port =
      wait_until(10, 'the proxy listening', sub { file_tail($log) =~ /listening on 127\.0\.0\.1:(\d+)/ && $1 });
    system $nativevnc, 'screenshot', '--url', "vnc://127.0.0.1:$port", '--encodings', 'raw', '--out', $out;
    is($?, 0, 'a plain VNC client through the proxy with --ticket-hosts');
    is(scalar differing_pixels(read_ppm($out), $guest->screendump), 0, '... sees the screen');
    stop_group($pid);
    like(file_tail($log, 100000), $mapped, 'the proxy logs the mapping');
};

subtest 'no secret in any log line' => sub {
    my $all = join "\n", @log;
    unlike($all, qr/\Q$password\E/, 'no password');
    unlike($all, qr{/ticket/}, 'no ticket URL');
};

done_testing;
