#!/usr/bin/perl
# vCenter's REST console tickets (VMWARE_VNC_OVER_WS_API, --api): webmks-sim as a vCenter serving both path
# generations (/api, and /rest as in 7.0 before U2), and a vCenter that offers only REST (no /sdk), which the
# default, auto, reaches through REST. Through consoles::NativeVNC and the nativevnc CLI; screens compared
# with QEMU's screendump, API sessions counted on the simulator's side.
use v5.36;
use Test::More;
use File::Temp 'tempdir';

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log error_of message_of);
use NativeVNC::Test::Guest;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Image qw(read_ppm differing_pixels);
use NativeVNC::Test::Util qw(repo_root);

use consoles::NativeVNC;

deadline(300);
my @log;
capture_log(diag => \@log, warn => \@log);

my $password = 'Rest:p@ss/w0rd';
my $tmp = tempdir(CLEANUP => 1);
my $nativevnc = repo_root() . '/target/release/nativevnc';
my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;

sub vcenter (@args) {
    return NativeVNC::Test::WebmksSim->start(
        vnc_host => $guest->vnc_host,
        vnc_port => $guest->vnc_port,
        password => $password,
        args => ['--flavour', 'vcenter', '--vm', 'sut,moid=vm-1001', '--vm', 'off,moid=vm-1002,power=off', @args]);
}

# How the simulator's counters changed while $code ran.
sub counted ($sim, $code) {
    my $before = $sim->stats;
    $code->();
    my $after = $sim->stats;
    return {map { ($_ => $after->{$_} - $before->{$_}) } qw(logins logouts rest_logins rest_logouts tickets_used)};
}

my $both = vcenter();
my $rest_only = vcenter('--no-soap', '--rest-generation', 'rest');
my $api_only = vcenter('--no-soap', '--rest-generation', 'api');

# Logs in through consoles::NativeVNC, compares the screen, logs out; returns the counters of the simulator.
sub console_through ($sim, $url, $what) {
    return counted(
        $sim,
        sub {
            my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url});
            is($vnc->login, undef, "login: $what");
            is($guest->console_matches($vnc, $what), 0, '... the screen equals QEMU\'s screendump');
            $vnc->socket(undef);
        });
}

subtest 'VMWARE_VNC_OVER_WS_API=rest: /api paths, the VM by name' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_API} = 'rest';
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $both->cert_file;
    my $counted = console_through($both, $both->url(vm => 'sut'), 'REST ticket, /api');
    is_deeply($counted, {logins => 0, logouts => 0, rest_logins => 1, rest_logouts => 1, tickets_used => 1},
        'one REST session, deleted after the ticket was used; no SOAP session')
      or diag explain $counted;
};

subtest 'auto, and no SOAP API: REST, the older /rest paths, the VM by VIRSH_VM_ID' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $rest_only->cert_file;
    local $bmwqemu::vars{VIRSH_VM_ID} = 'vm-1001';
    my $url = $rest_only->url =~ s{/\?.*\z|/\z}{}r;
    my $counted = console_through($rest_only, $url, 'REST ticket, /rest');
    is_deeply([@$counted{qw(rest_logins rest_logouts tickets_used)}], [1, 1, 1], 'one REST session, deleted')
      or diag explain $counted;
};

subtest 'auto, and no SOAP API: REST, the /api paths only' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_INSECURE} = 1;
    my $counted = console_through($api_only, $api_only->url(moid => 'vm-1001'), 'REST ticket, /api only');
    is_deeply([@$counted{qw(rest_logins rest_logouts tickets_used)}], [1, 1, 1], 'one REST session, deleted')
      or diag explain $counted;
};

subtest 'auto with a SOAP API: SOAP' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_API} = 'auto';
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $both->cert_file;
    my $counted = console_through($both, $both->url(vm => 'sut'), 'SOAP ticket');
    is_deeply([@$counted{qw(logins logouts rest_logins)}], [1, 1, 0], 'one SOAP session, no REST one')
      or diag explain $counted;
};

subtest 'errors: at once, saying why' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $both->cert_file;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS} = 3;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_DELAY} = 0.2;
    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 10;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_API} = 'rest';
    my $login = sub ($sim, $url) { error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url})->login }) };

    my $e = $login->($both, $both->url(vm => 'sut', password => 'wrong'));
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'a wrong password');
    like(message_of($e), qr/: vSphere login failed: incorrect user name or password\z/, '... says so');

    $e = $login->($both, $both->url(vm => 'off'));
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'a powered-off VM');
    like(message_of($e), qr/no webmks ticket after 4 tries: .*is it powered on\?/, '... retried, then says why');

    $e = $login->($both, $both->url(vm => 'nosuchvm'));
    like(message_of($e), qr/no virtual machine matches name "nosuchvm"/, 'an unknown name');

    my $counted = counted(
        $both,
        sub {
            $e = $login->($both, $both->url(path => 'DC0/vm/sut'));
        });
    like(message_of($e), qr/\QvSphere: the REST API finds virtual machines by managed object id or name, not by \E
        \Qinventory path "DC0\/vm\/sut"; use the SOAP API (VMWARE_VNC_OVER_WS_API=soap, --api soap)\E\z/x,
        'an inventory path: REST cannot find it, and the message says what can');
    is_deeply([@$counted{qw(rest_logins rest_logouts)}], [1, 1], '... at once, and the session is deleted');

    my $esxi = NativeVNC::Test::WebmksSim->start(password => $password, args => ['--vm', 'sut,moid=7']);
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $esxi->cert_file;
    $e = $login->($esxi, $esxi->url(moid => 7));
    like(message_of($e), qr/the endpoint has no REST API .*ESXi hosts give tickets through the SOAP API/,
        'an ESXi host has no REST API');

    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_API} = 'soap';
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $api_only->cert_file;
    $e = $login->($api_only, $api_only->url(moid => 'vm-1001'));
    like(message_of($e), qr/the endpoint has no SOAP API \(\/sdk: HTTP 404\).*VMWARE_VNC_OVER_WS_API=rest or auto/,
        'SOAP asked of a vCenter without it');

    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_API} = 'vapi';
    $e = $login->($api_only, $api_only->url(moid => 'vm-1001'));
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'an unknown API');
    like(message_of($e), qr/unknown vSphere API "vapi": expected soap, rest or auto/, '... names the choices');
};

subtest 'nativevnc --api' => sub {
    my $out = "$tmp/cli.ppm";
    my $url = $both->url(vm => 'sut') =~ s{^https://}{webmks+https://}r;
    my @tls = ('--ca-file', $both->cert_file);
    my $counted = counted(
        $both,
        sub {
            system $nativevnc, 'screenshot', '--api', 'rest', @tls, '--url', $url, '--out', $out;
            is($?, 0, 'screenshot --api rest');
        });
    is(scalar differing_pixels(read_ppm($out), $guest->screendump), 0,
        '... equals the screendump');
    is_deeply([@$counted{qw(logins rest_logins rest_logouts)}], [0, 1, 1], '... through one REST session');

    my $ticket = qx{$nativevnc ticket --api rest @tls --url '$url'};
    is($?, 0, 'ticket --api rest');
    like($ticket, qr{\Awss://127\.0\.0\.1:\d+/ticket/[0-9a-f]+\n\z}, '... prints the REST ticket\'s URL');

    my $no_soap = $api_only->url(moid => 'vm-1001') =~ s{^https://}{webmks+https://}r;
    system $nativevnc, 'screenshot', '--ca-file', $api_only->cert_file, '--url', $no_soap, '--out', $out;
    is($?, 0, 'without --api, a vCenter without SOAP is reached through REST');

    my $err = "$tmp/cli.err";
    system "$nativevnc screenshot --api vapi --url '$url' --out $out 2>$err";
    is($? >> 8, 2, '--api vapi is a usage error');
    like(do { local (@ARGV, $/) = $err; <> }, qr/unknown vSphere API "vapi": expected soap, rest or auto/,
        '... naming the choices');
};

subtest 'no secret in any log line' => sub {
    my $all = join "\n", @log;
    unlike($all, qr/\Q$password\E/, 'no password');
    unlike($all, qr{/ticket/}, 'no ticket URL');
};

done_testing;
