#!/usr/bin/perl
# TLS beyond rustls: certificates made by the openssl command (RSA 1024, 2048 and 4096 bits, ECDSA P-256 and
# P-384, RSA-PSS signatures) presented by OpenSSL itself, limited to TLS 1.2 or to TLS 1.3, for the vSphere API
# and the webmks console alike, in the insecure, CA file and pinned modes.
#
# Setup: webmks-sim presents the certificate (--cert/--key, so its tickets carry its thumbprints) on 127.0.0.1:P
# and writes 127.0.0.2 into tickets (--ticket-host); t/bin/openssl-relay, Python's ssl module (OpenSSL), listens
# on 127.0.0.2:P with the same certificate, terminates TLS and re-encrypts to the simulator. The client is given
# https://127.0.0.2:P/, so both its API requests and the ticket's wss://127.0.0.2:P/ticket/... go through
# OpenSSL; the relay's log shows which version served which. The console shows the real guest's screen, compared
# with QEMU's screendump.
use v5.36;
use Test::More;
use File::Temp 'tempdir';

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log error_of);
use NativeVNC::Test::Guest;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Util qw(repo_root wait_until spawn_group stop_group file_tail slurp slurp_or_die);

use consoles::NativeVNC;

deadline(600);
my @warnings;
capture_log(warn => \@warnings);

my $password = 'Sim:p@ss/w0rd';
my $tmp = tempdir(CLEANUP => 1);
my $relay_program = repo_root() . '/t/bin/openssl-relay';
my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;

# Name, then the openssl req options choosing the key and the signature.
my @certs = (
    [rsa1024 => '-newkey', 'rsa:1024'],
    [rsa2048 => '-newkey', 'rsa:2048'],
    [rsa4096 => '-newkey', 'rsa:4096'],
    [p256 => '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    [p384 => '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    ['rsa2048-pss' => '-newkey', 'rsa:2048', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'],
);

# Makes NAME.crt and NAME.key in $tmp for the names $san; returns their paths.
sub make_cert ($name, $san, @options) {
    my ($crt, $key) = ("$tmp/$name.crt", "$tmp/$name.key");
    my $out = qx{openssl req -x509 -nodes -sha256 -days 30 -subj /CN=localhost @options -keyout $key -out $crt \\
      -addext subjectAltName=$san 2>&1};
    die "openssl req for $name failed: $out" if $?;
    return ($crt, $key);
}

# The SHA-256 fingerprint openssl computes, AB:CD:...
sub openssl_sha256 ($crt) {
    my $out = qx{openssl x509 -in $crt -noout -fingerprint -sha256};
    die "openssl x509 failed" if $?;
    return $out =~ /=([0-9A-F:]+)$/m ? $1 : die "no fingerprint in: $out";
}

# Starts the relay on 127.0.0.2 at the simulator's port; returns its pid and log.
sub start_relay ($sim, $crt, $key, $version) {
    my $log = "$tmp/relay-" . $sim->port . "-$version.log";
    my $pid = spawn_group([$relay_program, '--listen', '127.0.0.2:' . $sim->port, '--target', '127.0.0.1:' . $sim->port,
            '--cert', $crt, '--key', $key, '--version', $version], log => $log);
    wait_until(20, "the relay for TLS $version", sub {
        my $text = slurp($log) // return;
        die "the relay failed:\n$text" if $text =~ /Traceback|Error/;
        return $text =~ /^relay listening on /m;
    });
    return ($pid, $log);
}

# webmks-sim presenting the certificate, writing the relay's address (127.0.0.2) into its tickets; and the
# console's URL through the relay.
sub sim_behind_relay ($crt, $key) {
    my $sim = NativeVNC::Test::WebmksSim->start(
        vnc_host => $guest->vnc_host,
        vnc_port => $guest->vnc_port,
        password => $password,
        cert => $crt,
        key => $key,
        args => ['--vm', 'sut,moid=7', '--ticket-host', '127.0.0.2']);
    return ($sim, $sim->url(moid => 7) =~ s/\@127\.0\.0\.1:/\@127.0.0.2:/r);
}

for my $cert (@certs) {
    my ($name, @options) = @$cert;
    my ($crt, $key) = make_cert($name, 'DNS:localhost,IP:127.0.0.1,IP:127.0.0.2', @options);
    my ($sim, $url) = sim_behind_relay($crt, $key);
    my %modes = (
        insecure => {VMWARE_VNC_OVER_WS_INSECURE => 1},
        'CA file' => {VMWARE_VNC_OVER_WS_CA_FILE => $crt},
        pinned => {VMWARE_VNC_OVER_WS_THUMBPRINT => $sim->sha256},
    );
    subtest "$name certificate" => sub {
        is($sim->sha256, openssl_sha256($crt), 'webmks-sim presents the given certificate: openssl\'s fingerprint');
        for my $version ('1.2', '1.3') {
            my ($relay, $log) = start_relay($sim, $crt, $key, $version);
            for my $mode (sort keys %modes) {
                local @bmwqemu::vars{keys %{$modes{$mode}}} = values %{$modes{$mode}};
                my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url});
                my $e = error_of(sub { $vnc->login });
                is($e, '', "$mode, TLS $version: logged in through OpenSSL") or next;
                # The screen for every mode with the 1024-bit key ring cannot verify, and for one other key.
                if ($name eq 'rsa1024' || ($name eq 'p384' && $version eq '1.3')) {
                    is($guest->console_matches($vnc, "$name $mode $version"), 0, '... the guest\'s screen');
                }
                $vnc->socket(undef);
            }
            stop_group($relay);
            my $served = slurp_or_die($log);
            like($served, qr/^accepted TLSv\Q$version\E \S+: POST \/sdk$/m, "OpenSSL served the API over TLS $version");
            like($served, qr/^accepted TLSv\Q$version\E \S+: GET \/ticket$/m, '... and the console');
            unlike($served, qr/connection failed/, '... without a failed connection') or diag $served;
        }
    };
    $sim->stop;
}

subtest 'a certificate for another name: refused with a CA file, accepted when insecure' => sub {
    my ($crt, $key) = make_cert('other-name', 'DNS:esx.invalid', '-newkey', 'rsa:1024');
    my ($sim, $url) = sim_behind_relay($crt, $key);
    my ($relay) = start_relay($sim, $crt, $key, '1.3');
    {
        local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $crt;
        local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS} = 0;
        my $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url})->login });
        isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'CA file');
        like($e->message, qr/not trusted: it is not valid for the name 127\.0\.0\.2/, '... names the problem');
        like($e->message, qr/--thumbprint, VMWARE_VNC_OVER_WS_THUMBPRINT/, '... and a way out');
    }
    {
        local $bmwqemu::vars{VMWARE_VNC_OVER_WS_INSECURE} = 1;
        my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url});
        is(error_of(sub { $vnc->login }), '', 'insecure logs in');
        is($guest->console_matches($vnc, 'insecure, another name'), 0, '... the guest\'s screen');
        $vnc->socket(undef);
    }
    stop_group($relay);
    $sim->stop;
};

done_testing;
