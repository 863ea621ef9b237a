#!/usr/bin/perl
# The webmks fault suite: consoles::NativeVNC, as os-autoinst uses it, on a VMware webmks console (webmks-sim
# in front of QEMU's VNC server and a real Linux guest) whose connection breaks in every way a WebSocket over
# TLS can: close frames with codes 1009 and 1011 and an over-size message from the simulator (POST
# /_sim/fault); a TCP connection dropped without a close frame (1006), reset, cut in the middle of an update,
# left half-open, or trickling at 1 byte/s, by a relay in front of the simulator's TLS port. Each case ends
# within its stated time in a clear error (kind and message asserted, never holding the password, a ticket or
# the session cookie) followed by a relogin with a fresh ticket, after which the screen equals QEMU's
# screendump and the keys typed while the console was broken have arrived in the guest; a relogin whose own
# connection closes after its first update logs in once more. Then the login errors: a one-shot ticket used
# twice through its wss URL, and handed out twice by a vSphere API in front of the simulator's; a thumbprint
# mismatch; a wrong vSphere password. Nothing panics.
#
# Setup: webmks-sim listens on 127.0.0.2:P and writes 127.0.0.1 into its tickets; the relay listens on
# 127.0.0.1:P and forwards to it. The console's URL is https://127.0.0.1:P/, so the vSphere API and the
# ticket's wss://127.0.0.1:P/ticket/... both pass through the relay; the tests control the simulator directly.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use Mojo::UserAgent;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log error_of message_of);
use NativeVNC::Test::Guest;
use NativeVNC::Test::Relay;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Util qw(repo_root wait_until file_tail free_tcp_port spawn_group stop_group);

use consoles::NativeVNC;

deadline(240);
my @log;
capture_log(diag => \@log, warn => \@log);

my $password = 'Sim:p@ss/w0rd';
my $tmp = tempdir(CLEANUP => 1);
# The core runs in this process: a panic in one of its threads would only show on standard error.
open my $saved_stderr, '>&', \*STDERR or die "dup STDERR: $!";
open STDERR, '>', "$tmp/stderr" or die "$tmp/stderr: $!";
# What went there is shown at the end, whatever the outcome.
END { print {$saved_stderr} file_tail("$tmp/stderr", 1 << 20) if $saved_stderr && -s "$tmp/stderr" }
my $nativevnc = repo_root() . '/target/release/nativevnc';
my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;

# A port free on 127.0.0.1, for the relay; the simulator takes it on 127.0.0.2.
my $port = free_tcp_port();
my $sim = NativeVNC::Test::WebmksSim->start(
    listen_host => '127.0.0.2',
    port => $port,
    vnc_host => $guest->vnc_host,
    vnc_port => $guest->vnc_port,
    password => $password,
    args => ['--vm', 'sut,moid=7', '--ticket-host', '127.0.0.1']);
my $relay = NativeVNC::Test::Relay->start($sim->host, $port, listen => $port);
my $url = $sim->url(moid => 7, host => $relay->host);

$bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $sim->cert_file;
$bmwqemu::vars{VNC_STALL_THRESHOLD} = 1;

my $vnc = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url});
$vnc->login;
is($guest->console_matches($vnc, 'the first screen'), 0, 'through the relay: the screen equals QEMU\'s screendump');

sub type_text ($text) {
    my %names = ("\n" => 'ret', ' ' => 'spc');
    $vnc->map_and_send_key($names{$_} // $_, undef, 0.25 / 30) for split //, $text;
}

# Types "echo WORD > /tmp/WORD" and Return.
sub type_marker ($word) { type_text("echo $word > /tmp/$word\n") }

sub guest_file ($path) {
    return wait_until(20, "$path written in the guest", sub { $guest->run("cat $path 2>/dev/null || true") });
}

# A ticket is 32 hex digits; the cookie is vmware_soap_session's.
sub no_secret ($text, $what) {
    unlike($text, qr/\Q$password\E|vmware_soap_session|[0-9a-f]{32}/i, "$what: no password, ticket or cookie");
}

# What os-autoinst's capture loop does every 0.1 s, until $done or $seconds pass; true if $done.
sub capture_loop ($seconds, $done) {
    my $until = time + $seconds;
    while (time < $until) {
        $vnc->update_framebuffer;
        $vnc->send_update_request;
        return 1 if $done->();
        sleep 0.1;
    }
    return 0;
}

# The relogin after a broken stream: keys typed while broken arrive, fresh tickets, the guest's screen.
sub relogged_in ($word, $issued, $logins = 1) {
    wait_until(10, "$logins new logins", sub {
        $vnc->update_framebuffer;
        $vnc->send_update_request;
        $sim->stats->{tickets_issued} >= $issued + $logins;
    });
    is($sim->stats->{tickets_issued}, $issued + $logins, $logins == 1 ? 'one fresh ticket' : "$logins fresh tickets");
    is(guest_file("/tmp/$word"), $word, 'the keys typed meanwhile arrived in the guest');
    is($guest->console_matches($vnc, "the screen after $word"), 0, 'the screen equals QEMU\'s screendump');
}

# One fault the client notices as a broken stream: $break breaks it, the client's error is a protocol error
# matching $message within 10 s; keys typed then arrive after update_framebuffer's relogin, which takes less
# than $bound seconds from the break. $logins: the tickets the relogin takes (more when it breaks again).
sub broken_stream ($name, $word, $break, $message, $bound, $logins = 1) {
    subtest $name => sub {
        my $issued = $sim->stats->{tickets_issued};
        my $start = time;
        $break->();
        # The pixels of an update are read when they are drawn: what the console does in update_framebuffer.
        my $e = error_of(sub { wait_until(10, 'the break noticed', sub { $vnc->_draw; $vnc->_open_client->poll; 0 }) });
        isa_ok($e, 'NativeVNC::Error', 'the client reports it');
        is(eval { $e->kind }, 'protocol', '... as a protocol error');
        like(message_of($e), $message, '... saying what happened') or diag message_of($e);
        note 'the message: ', message_of($e);
        no_secret(message_of($e), '... its message');
        type_marker($word);
        my $mark = @log;
        is(error_of(sub { $vnc->update_framebuffer }), '', 'update_framebuffer logs in again');
        my $took = time - $start;
        cmp_ok($took, '<', $bound, sprintf('break to relogin in %.1f s (bound %d s)', $took, $bound));
        ok((grep { /^Error in VNC protocol - relogin: \Q@{[message_of($e)]}\E$/ } @log[$mark .. $#log]),
            '... as os-autoinst does')
          or diag explain [@log[$mark .. $#log]];
        relogged_in($word, $issued, $logins);
    };
}

broken_stream('close code 1011 from the server', 'ws1011',
    sub { $sim->fault(close => 1011, reason => 'the MKS hit an internal error') },
    qr/\Athe server closed the WebSocket \(code 1011: the MKS hit an internal error\)\z/, 5);

broken_stream('close code 1009 from the server', 'ws1009',
    sub { $sim->fault(close => 1009, reason => 'message too big') },
    qr/\Athe server closed the WebSocket \(code 1009: message too big\)\z/, 5);

broken_stream('a message over the client\'s limit (512 MiB)', 'oversize',
    sub { $sim->fault(oversize => 2**30) },
    qr/WebSocket message too large.*1073741824/, 5);

# A connection that ends without a WebSocket close frame (1006) is the server closing the connection, as on
# plain TCP; TLS's missing close_notify and the TLS library's manual are no help to the user.
my $lost_without_close = qr/\Athe server closed the connection(?!.*(?:close_notify|https?:))/;

broken_stream('TCP dropped without a close frame (1006)', 'dropped',
    sub { $relay->drop },
    $lost_without_close, 5);

broken_stream('TCP reset (1006)', 'reset',
    sub { $relay->reset },
    qr/\Areading from the server: Connection reset by peer/, 5);

broken_stream('connection cut in the middle of an update', 'cutmid',
    sub {
        $relay->cut_after(3000);
        $vnc->send_update_request(0);
    },
    $lost_without_close, 5);

broken_stream('the relogin\'s own connection closes after its first update (1011): another relogin', 'twice',
    sub {
        $sim->fault(close => 1011, reason => 'first', next => 1);
        $sim->fault(close => 1011, reason => 'second');
    },
    qr/\Athe server closed the WebSocket \(code 1011: second\)\z/, 10, 2);

# The stream does not break, it stops: os-autoinst's stall detection (a forced request after 2 s, a new
# login VNC_STALL_THRESHOLD = 1 s later) logs in again. With $keys_flow, keys typed during the stall take
# the old connection (the client's direction still flows); a half-open connection takes them into the void,
# which no client can tell, so there they are typed after the relogin.
sub stalled ($name, $word, $stall, $bound, $keys_flow) {
    subtest $name => sub {
        my $issued = $sim->stats->{tickets_issued};
        my $mark = @log;
        my $start = time;
        $stall->();
        type_marker($word) if $keys_flow;
        ok(capture_loop($bound, sub { $sim->stats->{tickets_issued} > $issued }), 'a new login');
        my $took = time - $start;
        cmp_ok($took, '>', 2, sprintf('after the stall was seen (%.1f s)', $took));
        cmp_ok($took, '<', $bound, "within $bound s");
        ok((grep { /^considering VNC stalled, no update for \d+\.\d\d seconds$/ } @log[$mark .. $#log]),
            'logged as os-autoinst does')
          or diag explain [@log[$mark .. $#log]];
        type_marker($word) unless $keys_flow;
        relogged_in($word, $issued);
    };
}

stalled('half-open: nothing comes back, no FIN', 'halfopen', sub { $relay->half_open }, 8, 0);
stalled('1 byte/s from the server', 'trickle', sub { $relay->trickle(1) }, 8, 1);

subtest 'a reused ticket: HTTP 503, tickets are one-shot' => sub {
    my $wss = `$nativevnc ticket --ca-file @{[$sim->cert_file]} --url '$url'`;
    is($?, 0, 'nativevnc ticket');
    chomp $wss;
    like($wss, qr{\Awss://127\.0\.0\.1:@{[$sim->port]}/ticket/[0-9a-f]{32}\z}, 'a wss URL on the relay');
    my $ua = Mojo::UserAgent->new(insecure => 1, connect_timeout => 5, request_timeout => 5);
    my @answers;
    for my $n (1 .. 2) {
        my $tx = $ua->build_websocket_tx($wss, ['binary']);
        $ua->start($tx, sub ($ua, $tx) { push @answers, [$tx->res->code, $tx->res->body]; $tx->finish if $tx->is_websocket });
        Mojo::IOLoop->one_tick until @answers == $n;
    }
    is($answers[0][0], 101, 'the first use opens the console');
    is($answers[1][0], 503, 'the second is refused with HTTP 503');
    like($answers[1][1], qr/ticket already used \(tickets are one-shot\)/, '... saying tickets are one-shot');
};

# A vSphere API in front of the simulator's that answers every AcquireTicket after the first with the first
# ticket again: HTTPS on 127.0.0.1:PORT with its own certificate, every request forwarded to UPSTREAM.
my $replaying_api = <<'PERL';
use v5.36;
use Mojo::Server::Daemon;
use Mojo::UserAgent;
use Mojolicious;
my ($port, $upstream, $cert, $key) = @ARGV;
my $ua = Mojo::UserAgent->new(insecure => 1, request_timeout => 20);
my $first;
my $app = Mojolicious->new;
$app->routes->any('/*rest' => {rest => ''} => sub ($c) {
    my $req = $c->req;
    my %headers = map { my $v = $req->headers->header($_); defined $v ? ($_ => $v) : () }
      qw(Cookie SOAPAction Content-Type Authorization vmware-api-session-id);
    my $res = $ua->start($ua->build_tx($req->method => $upstream . $req->url->path_query => \%headers => $req->body))
      ->result;
    my $body = $res->body;
    if ($body =~ m{<ticket>([0-9a-f]{32})</ticket>}) {
        my $ticket = $1;
        $first //= $ticket;
        if ($ticket ne $first) {
            $body =~ s/$ticket/$first/g;
            say STDOUT 'replayed a ticket';
        }
    }
    $c->res->headers->header($_ => $res->headers->header($_)) for grep { $res->headers->header($_) } qw(Set-Cookie);
    $c->res->headers->content_type($res->headers->content_type // 'text/xml');
    $c->render(data => $body, status => $res->code);
});
$app->log->level('fatal');
$| = 1;
my $daemon = Mojo::Server::Daemon->new(app => $app, listen => ["https://127.0.0.1:$port?cert=$cert&key=$key"],
    silent => 1);
$daemon->start;
say STDOUT 'listening';
Mojo::IOLoop->start;
PERL

subtest 'a ticket the vSphere API hands out twice: the console refuses it, the client says tickets are one-shot' => sub {
    my ($cert, $key) = ("$tmp/api.crt", "$tmp/api.key");
    my @openssl = ('openssl', 'req', '-x509', '-nodes', '-newkey', 'rsa:2048', '-sha256', '-days', 1, '-subj',
        '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', $key, '-out', $cert);
    my $out = qx{@openssl 2>&1};
    ok(-s $cert && -s $key, 'a certificate for the replaying API') or diag $out;
    my $api_port = free_tcp_port();
    my $log = "$tmp/replaying-api.log";
    my $upstream = sprintf 'https://%s:%d', $sim->host, $sim->port;
    my $pid = spawn_group([$^X, '-e', $replaying_api, $api_port, $upstream, $cert, $key], log => $log);
    wait_until(20, 'the replaying API listening', sub { file_tail($log) =~ /^listening$/m });
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $cert;
    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 1;
    local $bmwqemu::vars{VNC_CONNECT_SLEEP} = 0.2;
    my $api_url = $sim->url(moid => 7, host => '127.0.0.1', port => $api_port);
    my $first = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $api_url});
    is(error_of(sub { $first->login }), '', 'the first ticket opens the console');
    $first->socket(undef);
    my $rejected = $sim->stats->{tickets_rejected};
    my $start = time;
    my $e = error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $api_url})->login });
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'the same ticket again');
    like(message_of($e), qr/the ticket was already used or has expired \(tickets are one-shot\) \(HTTP 503/,
        '... the client says tickets are one-shot');
    note 'the message: ', message_of($e);
    no_secret(message_of($e), '... its message');
    cmp_ok($sim->stats->{tickets_rejected} - $rejected, '>=', 1, '... the console refused the reused ticket');
    like(file_tail($log), qr/^replayed a ticket$/m, '... which the API had replayed');
    cmp_ok(time - $start, '<', 5, sprintf('... within the 1 s connect window and a margin (%.1f s)', time - $start));
    stop_group($pid);
};

subtest 'login errors: thumbprint mismatch, wrong password' => sub {
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS} = 1;
    local $bmwqemu::vars{VMWARE_VNC_OVER_WS_REQUEST_DELAY} = 0.1;
    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 1;
    my $start = time;
    my $first = $sim->sha256 =~ /\A00/ ? 'FF' : '00';
    my $e = do {
        local $bmwqemu::vars{VMWARE_VNC_OVER_WS_THUMBPRINT} = $first . substr($sim->sha256, 2);
        error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $url})->login });
    };
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'a pinned thumbprint the API\'s certificate does not have');
    like(message_of($e), qr/thumbprint/i, '... names the thumbprint');
    note 'the message: ', message_of($e);
    no_secret(message_of($e), '... its message');

    my $wrong = NativeVNC::Test::WebmksSim->start(
        vnc_host => $guest->vnc_host,
        vnc_port => $guest->vnc_port,
        password => $password,
        args => ['--vm', 'sut,moid=7', '--wrong-thumbprint']);
    $e = do {
        local $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $wrong->cert_file;
        error_of(sub { consoles::NativeVNC->new({vmware_vnc_over_ws_url => $wrong->url(moid => 7)})->login });
    };
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'a console whose certificate is not the ticket\'s');
    like(message_of($e), qr/thumbprint/i, '... names the thumbprint');
    note 'the message: ', message_of($e);
    no_secret(message_of($e), '... its message');
    $wrong->stop;

    my $before = $sim->stats->{failed_logins};
    $e = error_of(sub {
        consoles::NativeVNC->new({vmware_vnc_over_ws_url => $sim->url(moid => 7, host => $relay->host,
                    password => 'not-' . $password)})->login
    });
    isa_ok($e, 'OpenQA::Exception::VNCSetupError', 'a wrong vSphere password');
    like(message_of($e), qr/incorrect user name or password/, '... says so');
    note 'the message: ', message_of($e);
    no_secret(message_of($e), '... its message');
    is($sim->stats->{failed_logins} - $before, 1, '... and is not retried');
    cmp_ok(time - $start, '<', 15, 'the three errors within 15 s');
};

subtest 'no secret in any log, nothing panicked' => sub {
    $vnc->socket(undef);
    $relay->stop;
    $sim->stop;
    my $all = join "\n", @log, file_tail($sim->log_path, 1 << 20);
    unlike($all, qr/\Q$password\E/, 'no password in the logs');
    unlike($all, qr/vmware_soap_session=/, 'no session cookie');
    unlike($all, qr{/ticket/[0-9a-f]{5}}, 'no whole ticket');
    my $stderr = file_tail("$tmp/stderr", 1 << 20);
    unlike(join("\n", $all, $stderr), qr/panicked/, 'no panic in the client, the simulator or the test');
};

done_testing;
