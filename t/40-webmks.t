#!/usr/bin/perl
# VMware webmks end to end: consoles::NativeVNC and the nativevnc command against webmks-sim (a stand-in for
# ESXi and vCenter: real HTTPS, real SOAP, real WebSockets over TLS, the VMware RFB dialect) fronting QEMU's
# VNC server in front of a real Linux guest. The screen is compared with QEMU's own screendump, typing is
# checked inside the guest, and every failure mode is checked by its exception class and message.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use Mojo::UserAgent;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log error_of);
use NativeVNC::Test::Guest;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Image qw(read_ppm differing_pixels);
use NativeVNC::Test::Util qw(repo_root wait_until spawn_group stop_group file_tail free_tcp_port);

use consoles::NativeVNC;

deadline(420);
my (@warnings, @diags);
capture_log(diag => \@diags, warn => \@warnings);

my $password = 'Sim:p@ss/w0rd';
my $tmp = tempdir(CLEANUP => 1);
my $nativevnc = repo_root() . '/target/release/nativevnc';
my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;

sub sim (@args) {
    return NativeVNC::Test::WebmksSim->start(
        vnc_host => $guest->vnc_host,
        vnc_port => $guest->vnc_port,
        password => $password,
        args => ['--vm', 'sut,moid=7', '--vm', 'other,moid=8,power=off', @args]);
}

sub type_text ($vnc, $text) {
    my %names = ("\n" => 'ret', ' ' => 'spc', '-' => 'minus', "\t" => 'tab');
    $vnc->map_and_send_key($names{$_} // $_, undef, 0.25 / 30) for split //, $text;
}

sub guest_file ($path) {
    return wait_until(30, "$path written in the guest", sub { $guest->run("cat $path 2>/dev/null || true") });
}


my $sim = sim('--extra-vmware-messages');

subtest 'a webmks console: screen, typing with VMware scancodes' => sub {
    my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $sim->url(moid => 7), hostname => 'sut-host'});
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $sim->cert_file;
    is($vnc->login, undef, 'login over webmks');
    is($vnc->description, 'VNC over WebSockets server provided by VMWare', 'os-autoinst\'s description');
    is($vnc->width, 1024, 'width');
    is($guest->console_matches($vnc, 'the first screen'), 0, 'the framebuffer equals QEMU\'s screendump (TightPNG)');
    my $counts = $vnc->encoding_counts;
    ok($counts->{-260}, 'the simulator sent TightPNG');
    ok($counts->{0x574d5664}, 'and a VMware cursor');
    ok($vnc->_open_client->status->{scancodes}, 'the server announced VMware key events: typing uses scancodes');

    my $text = q{echo "$((1234 + 4321)) A@z_~!#%^&*()+={}[]|:;<>,.?/" > /tmp/webmks};
    type_text($vnc, "$text\n");
    is(guest_file('/tmp/webmks'), q{5555 A@z_~!#%^&*()+={}[]|:;<>,.?/}, 'every character arrived, shifted ones too');
    my $stats = $sim->stats;
    cmp_ok($stats->{vmw_key_events}, '>=', 2 * length $text, 'as VMWKeyEvent scancodes');
    is($stats->{key_events}, 0, 'and no X11 keysyms');
    is($stats->{set_pixel_format_ignored}, 0, 'no SetPixelFormat was sent');
    type_text($vnc, "clear\n");
    is($guest->console_matches($vnc, 'the screen after typing'), 0, 'the screen equals the screendump after typing');
    is($stats->{logouts}, $stats->{logins}, 'the API session was logged out');
    $vnc->socket(undef);
};

subtest 'every login takes a fresh one-shot ticket' => sub {
    my $before = $sim->stats;
    my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $sim->url(vm => 'sut')});
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $sim->cert_file;
    $vnc->login;
    $vnc->login;
    my $after = $sim->stats;
    is($after->{tickets_issued} - $before->{tickets_issued}, 2, 'two logins, two tickets (found by name)');
    is($after->{tickets_used} - $before->{tickets_used}, 2, 'each used once');

    my $url = `$nativevnc ticket --ca-file @{[$sim->cert_file]} --url '@{[$sim->url(moid => 7)]}'`;
    is($?, 0, 'nativevnc ticket');
    chomp $url;
    like($url, qr{\Awss://127\.0\.0\.1:@{[$sim->port]}/ticket/\S+\z}, 'prints the wss URL');
    my $ua = Mojo::UserAgent->new(insecure => 1);
    my @codes;
    for (1 .. 2) {
        my $tx = $ua->build_websocket_tx($url, ['binary']);
        $ua->start($tx, sub ($ua, $tx) { push @codes, $tx->res->code; $tx->finish if $tx->is_websocket });
        Mojo::IOLoop->one_tick until @codes == $_;
    }
    is_deeply(\@codes, [101, 503], 'a ticket works once: the second use is refused with HTTP 503');
    $vnc->socket(undef);
};

subtest 'errors: wrong password, unknown VM, powered off' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $sim->cert_file;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS} = 1;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_DELAY} = 0.1;
    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 1;
    my $before = $sim->stats;
    my $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $sim->url(moid => 7, password => 'wrong')})->login });
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'wrong password');
    like($e->message, qr/incorrect user name or password/, '... says so');
    unlike($e->message, qr/wrong|\Q$password\E/, '... without the password');
    is($sim->stats->{failed_logins} - $before->{failed_logins}, 1, '... and is not retried');

    $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $sim->url(vm => 'nosuchvm')})->login });
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'unknown VM');
    like($e->message, qr/nosuchvm/, '... names it');
    $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $sim->url(moid => 8)})->login });
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'powered-off VM');
    like($e->message, qr/power|state/i, '... says why');

    system $nativevnc, 'screenshot', '--ca-file', $sim->cert_file, '--url', $sim->url(moid => 7, password => 'wrong'),
      '--out', "$tmp/x.png";
    is($? >> 8, 3, 'nativevnc exits 3 on wrong credentials');
};

subtest 'TLS: CA file, pinned thumbprints, insecure, untrusted' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS} = 0;
    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 1;
    my $url = $sim->url(moid => 7);
    my $e;
    {
        # A connect window long enough for several tries, were the refusal retried.
        local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 5;
        local $bmwqemu::vars{VNC_CONNECT_SLEEP} = 0.1;
        @warnings = ();
        $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url})->login });
    }
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'a self-signed certificate is not trusted by default');
    like($e->message, qr/not trusted/, '... and the message says so');
    is_deeply([grep { /Error connecting/ } @warnings], [], '... at once: a refused certificate is not retried');
    for my $tp ($sim->sha1, $sim->sha256) {
        local $bmwqemu::vars{VMWARE_VNC_OVER_WS_THUMBPRINT} = $tp;
        my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url});
        is(error_of(sub { $vnc->login }), '', 'pinned to the API certificate\'s thumbprint ' . length $tp);
        $vnc->socket(undef);
    }
    {
        # The certificate is fresh every run: change its first byte to one it does not have.
        my $first = $sim->sha256 =~ /\A00/ ? 'FF' : '00';
        local $bmwqemu::vars{VMWARE_VNC_OVER_WS_THUMBPRINT} = $first . substr($sim->sha256, 2);
        $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url})->login });
        like($e->message, qr/thumbprint/i, 'a wrong pinned thumbprint is refused');
    }
    {
        local $bmwqemu::vars{VMWARE_VNC_OVER_WS_INSECURE} = 1;
        @warnings = ();
        my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url});
        is(error_of(sub { $vnc->login }), '', 'insecure mode connects');
        ok((grep { /not verified/ } @warnings), '... and warns in the log');
        $vnc->socket(undef);
    }
    my $wrong = sim('--wrong-thumbprint');
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $wrong->cert_file;
    $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $wrong->url(moid => 7)})->login });
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'a console whose certificate does not match the ticket');
    like($e->message, qr/thumbprint/i, '... is refused: the ticket pins it');
};

subtest 'the server closing mid-update: VNCProtocolError, then a relogin with a new ticket' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $sim->cert_file;
    my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $sim->url(moid => 7)});
    $vnc->login;
    is($guest->console_matches($vnc, 'before the close'), 0, 'screen');
    my $issued = $sim->stats->{tickets_issued};
    $sim->control('close');
    # The pixels of an update are read when they are drawn: what the console does in update_framebuffer.
    my $e = error_of(sub {
        wait_until(10, 'the close noticed', sub { $vnc->_draw; $vnc->_open_client->poll; 0 }, interval => 0.1) });
    isa_ok($e, 'NativeVNC::Error', 'the client reports the broken stream');
    is($e->kind, 'protocol', '... as a protocol error');
    type_text($vnc, "echo after > /tmp/relogin\n");
    @warnings = ();
    is(error_of(sub { $vnc->update_framebuffer }), '', 'update_framebuffer logs in again');
    ok((grep { /^Error in VNC protocol - relogin: .*closed/ } @warnings), '... as os-autoinst does on VNCProtocolError')
      or diag explain \@warnings;
    is($sim->stats->{tickets_issued}, $issued + 1, 'with a fresh ticket');
    is(guest_file('/tmp/relogin'), 'after', 'keys typed around the relogin arrived');
    $vnc->socket(undef);
};

subtest 'tickets refused while the VM is being created are retried' => sub {
    my $slow = sim('--refuse-tickets', 2);
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $slow->cert_file;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_DELAY} = 0.2;
    @warnings = ();
    my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $slow->url(moid => 7)});
    is(error_of(sub { $vnc->login }), '', 'login succeeds on the third try');
    is(scalar(grep { /not been completely created, trying 1[01] more times\z/ } @warnings), 2, 'each failed try is logged')
      or diag explain \@warnings;
    $vnc->socket(undef);
};

subtest 'vCenter shapes: by inventory path and by name' => sub {
    my $vc = sim('--flavour', 'vcenter');
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $vc->cert_file;
    for my $vm ([path => 'DC0/vm/sut'], [vm => 'sut']) {
        my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $vc->url(@$vm)});
        is(error_of(sub { $vnc->login }), '', "found by $vm->[0] through vCenter's service content");
        $vnc->socket(undef);
    }
};

subtest 'os-autoinst variables: VMWARE_VNC_OVER_WS for the console of VIRSH_GUEST' => sub {
    local @bmwqemu::vars{qw(VMWARE_VNC_OVER_WS VMWARE_HOST VMWARE_USERNAME VMWARE_PASSWORD VIRSH_GUEST VIRSH_VM_ID)} =
      (1, $sim->host . ':' . $sim->port, 'root', $password, 'sut-host', 7);
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $sim->cert_file;
    my $vnc = consoles::NativeVNC->new({hostname => 'sut-host', port => 5901});
    is(error_of(sub { $vnc->login }), '', 'connects through vSphere, password and VM id from the variables');
    is($guest->console_matches($vnc, 'the screen'), 0, 'the screen');
    $vnc->socket(undef);
    local $bmwqemu::vars{VMWARE_PASSWORD};
    my $e = error_of(sub { consoles::NativeVNC->new({hostname => 'sut-host'})->login });
    like($e->message, qr/VMWARE_VNC_OVER_WS set but not VMWARE_HOST\/VMWARE_PASSWORD/, 'a missing password');
};

subtest 'a VMware guest\'s console without VMWARE_VNC_OVER_WS on vSphere 7+: fails at once, naming cause and fix' => sub {
    my $closed = free_tcp_port(from => 20000, to => 29999);
    local @bmwqemu::vars{qw(VIRSH_VMM_FAMILY VMWARE_HOST VIRSH_GUEST VNC_CONNECT_TIMEOUT_LOCAL VNC_CONNECT_SLEEP)} =
      ('vmware', $sim->host . ':' . $sim->port, '127.0.0.1', 20, 0.2);
    my $start = time;
    my $e = error_of(sub { consoles::NativeVNC->new({hostname => '127.0.0.1', port => $closed})->login });
    isa_ok($e, 'OpenQA::Exception::VNCSetupError');
    like($e->message, qr/^Error connecting to VNC server <127\.0\.0\.1:$closed>: .*refused.*: VMWARE_HOST \S+ runs VMware ESXi 8\.0\.2 build-\d+, which has no VNC server \(vSphere 7\.0 removed it\): set VMWARE_VNC_OVER_WS=1 to reach the console through a webmks ticket$/,
        'the error names the host\'s version, the cause and the fix');
    cmp_ok(time - $start, '<', 5, 'at the first refused connection, not after the connect window');

    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 1;
    $e = error_of(sub { consoles::NativeVNC->new({hostname => 'localhost', port => $closed})->login });
    unlike($e->message, qr/VMWARE_VNC_OVER_WS/, 'another console of the job: the usual retries, no such hint');
    my $esxi65 = sim('--esxi-version', '6.5');
    local $bmwqemu::vars{VMWARE_HOST} = $esxi65->host . ':' . $esxi65->port;
    $e = error_of(sub { consoles::NativeVNC->new({hostname => '127.0.0.1', port => $closed})->login });
    like($e->message, qr/refused/, 'ESXi 6.5 has a VNC server: the connection is retried until the window closes');
    unlike($e->message, qr/VMWARE_VNC_OVER_WS/, '... and the error blames no missing variable');
};

subtest 'nativevnc screenshot and proxy' => sub {
    my $url = $sim->url(vm => 'sut');
    system $nativevnc, 'screenshot', '--ca-file', $sim->cert_file, '--url', $url, '--out', "$tmp/cli.ppm";
    is($?, 0, 'nativevnc screenshot over webmks');
    is(scalar differing_pixels(read_ppm("$tmp/cli.ppm"), $guest->screendump), 0,
        'equals the screendump');

    my $log = "$tmp/proxy.log";
    my $pid = spawn_group([$nativevnc, 'proxy', '--listen', '127.0.0.1:0', '--ca-file', $sim->cert_file, '--url', $url],
        log => $log);
    my $port = wait_until(10, 'the proxy listening', sub { file_tail($log) =~ /listening on 127\.0\.0\.1:(\d+)/ && $1 });
    my $before = $sim->stats->{tickets_issued};
    for my $n (1 .. 2) {
        system $nativevnc, 'screenshot', '--url', "vnc://127.0.0.1:$port", '--encodings', 'raw', '--out', "$tmp/p$n.ppm";
        is($?, 0, "a plain VNC client through the proxy ($n)");
        is(scalar differing_pixels(read_ppm("$tmp/p$n.ppm"), $guest->screendump), 0, '... sees the screen');
    }
    is($sim->stats->{tickets_issued} - $before, 2, 'a fresh ticket per viewer');
    stop_group($pid);
    unlike(file_tail($log, 100000), qr/\Q$password\E/, 'the proxy log holds no password');
};

subtest 'no secret in any log line' => sub {
    my $all = join "\n", @warnings, @diags, file_tail($sim->log_path, 1000000);
    unlike($all, qr/\Q$password\E/, 'no password');
    unlike($all, qr/vmware_soap_session=/, 'no session cookie');
};

done_testing;
