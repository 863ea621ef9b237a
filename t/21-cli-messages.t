#!/usr/bin/perl
# What the nativevnc program says when something is wrong, and with which exit status: a table of command lines
# (with their environment) and the expected status, stderr and stdout, run against a real QEMU guest, webmks-sim
# in front of it, a closed port and a port that accepts but never answers. Messages must stay plain: no Rust
# debug values, no doubled words, rounded durations, and the way out named. Also: what `type` makes of
# backslashes, checked inside the guest.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use IO::Socket::INET;
use Time::HiRes qw(time);

use lib 't/lib';
use NativeVNC::Test::Cli qw(run_nativevnc spawn_nativevnc read_text);
use NativeVNC::Test::Guest;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Util qw(wait_until free_tcp_port stop_group);

$SIG{ALRM} = sub { diag 'test did not finish within 300 s'; exit 1 };
alarm 300;

my $tmp = tempdir(CLEANUP => 1);
my $vnc_password = 'vncpw42';
my $guest = NativeVNC::Test::Guest->start(password => $vnc_password);
$guest->wait_ready;
my $sim = NativeVNC::Test::WebmksSim->start(
    vnc_host => $guest->vnc_host, vnc_port => $guest->vnc_port, vnc_password => $vnc_password,
    password => 'Sim-pw1', args => ['--vm', 'demo-vm,moid=vm-7']);

my $hostport = join ':', $guest->vnc_host, $guest->vnc_port;
my $vnc_url = "vnc://:$vnc_password\@$hostport";
my $webmks = $sim->url(moid => 'vm-7', scheme => 'webmks+https');
my $sim_hostport = join ':', $sim->host, $sim->port;
my $closed = free_tcp_port();
my $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1, ReuseAddr => 1)
  or die "listening: $!";
my $silent_port = $silent->sockport;
my $not_pem = "$tmp/not-a-ca.pem";
open my $fh, '>', $not_pem or die $!;
print $fh "no certificate here\n";
close $fh;

# One regex of several pieces (for long messages).
sub re (@pieces) {
    my $joined = join '', @pieces;
    return qr/$joined/;
}

# Each case: args (and env), the exit status, what stderr must be (err: the exact text, or regexes to match), what
# stdout must match (out; without it and on failure, stdout must be empty), what the output must not match (not),
# files that must not exist afterwards (absent), the most seconds it may take (max, default 10), and what to do
# before (setup).
my @cases = (
    # --url
    {
        what => 'a URL without a scheme',
        args => ['key', '--url', $hostport, 'ret'],
        status => 2,
        err => "nativevnc: '$hostport' is not a URL: write vnc://$hostport for a VNC server, or "
          . "webmks+https://USER:PASSWORD\@HOST[:PORT]/VM for a VM's console\n",
    },
    {
        what => 'a VNC password without its colon',
        args => ['key', '--url', "vnc://$vnc_password\@$hostport", 'ret'],
        status => 2,
        err => "nativevnc: a vnc:// URL has no user name: put a colon before the password, "
          . "vnc://:PASSWORD\@HOST[:PORT]\n",
    },
    {
        what => 'an unsupported scheme',
        args => ['screenshot', '--url', "http://$hostport", '--out', "$tmp/x.png"],
        status => 2,
        err => "nativevnc: unsupported URL scheme 'http': use vnc://HOST:PORT or "
          . "webmks+https://USER:PASSWORD\@HOST/VM\n",
    },
    {
        what => 'no VNC password',
        args => ['screenshot', '--url', "vnc://$hostport", '--out', "$tmp/x.png"],
        env => { NATIVEVNC_PASSWORD => undef },
        status => 3,
        err => "nativevnc: VNC handshake with $hostport: the server requires a password, but none was given\n",
    },
    {
        what => 'a wrong VNC password',
        args => ['screenshot', '--url', "vnc://:wrong1\@$hostport", '--out', "$tmp/x.png"],
        status => 3,
        err => "nativevnc: VNC handshake with $hostport: authentication failed (wrong VNC password?)\n",
        absent => ["$tmp/x.png"],
    },
    {
        what => 'a webmks URL without a password',
        args => ['ticket', '--insecure', '--url', "webmks+https://root\@$sim_hostport/vm-7"],
        env => { NATIVEVNC_PASSWORD => undef },
        status => 2,
        err => "nativevnc: no password given for the vSphere API: write it into the URL, "
          . "webmks+https://USER:PASSWORD\@HOST/VM, or set NATIVEVNC_PASSWORD\n",
    },
    {
        what => 'the webmks password from NATIVEVNC_PASSWORD',
        args => ['ticket', '--insecure', '--url', "webmks+https://root\@$sim_hostport/vm-7"],
        env => { NATIVEVNC_PASSWORD => $sim->password },
        status => 0,
        out => qr{^wss://127\.0\.0\.1:\d+/ticket/\S+\n\z},
    },
    {
        what => 'a wrong vSphere password',
        args => ['ticket', '--insecure', '--url', $sim->url(moid => 'vm-7', password => 'wrong2')],
        status => 3,
        err => qr/^nativevnc: vSphere login failed: incorrect user name or password\n\z/m,
        not => qr/wrong2/,
    },
    {
        what => 'ticket with a vnc:// URL',
        args => ['ticket', '--url', $vnc_url],
        status => 2,
        err => "nativevnc: this needs a webmks URL, webmks+https://USER:PASSWORD\@HOST[:PORT]/VM (a VNC server "
          . "needs no ticket or proxy)\n",
    },

    # TLS
    {
        what => 'a CA file without certificates fails at once',
        args => ['ticket', '--ca-file', $not_pem, '--url', $webmks],
        status => 2,
        err => "nativevnc: CA file $not_pem contains no PEM certificate\n",
        max => 2,
    },
    {
        what => 'a CA file that does not exist',
        args => ['screenshot', '--ca-file', "$tmp/missing.pem", '--url', $webmks, '--out', "$tmp/x.png"],
        status => 2,
        err => "nativevnc: cannot read CA file $tmp/missing.pem: No such file or directory (os error 2)\n",
        max => 2,
    },
    {
        what => 'an untrusted certificate names every way to trust it',
        args => ['ticket', '--url', $webmks],
        status => 1,
        err => re(qr/^nativevnc: vSphere: TLS handshake with \Q$sim_hostport\E failed: the server certificate is not trusted: /,
          qr/it is not issued by a trusted certificate authority \(it has SHA-256 [0-9A-F:]+ and SHA-1 [0-9A-F:]+\); /,
          qr/\Qto trust it, give a CA file containing its issuer (--ca-file, VMWARE_VNC_OVER_WS_CA_FILE), pin its \E/,
          qr/\Qthumbprint (--thumbprint, VMWARE_VNC_OVER_WS_THUMBPRINT) or allow insecure TLS (--insecure, \E/,
          qr/\QVMWARE_VNC_OVER_WS_INSECURE=1)\E\n\z/),
        max => 5,
    },
    {
        what => 'insecure mode names the VM plainly',
        args => ['screenshot', '--insecure', '--url', $sim->url(vm => 'demo-vm'), '--out', "$tmp/insecure.png"],
        status => 0,
        out => qr/^\Q$tmp\E\/insecure\.png\n\z/,
        err => re(qr/^nativevnc: webmks console of the VM with name "demo-vm" via \Q$sim_hostport\E: /m,
          qr/TLS certificates are not verified \(insecure mode\)$/m),
        not => qr/Name\(|MoId\(/,
    },
    {
        what => 'ticket retries are counted in words',
        setup => sub { $sim->control('refuse-tickets', n => 3) },
        args => ['ticket', '--ca-file', $sim->cert_file, '--ticket-delay', '0.2', '--url', $webmks],
        status => 1,
        err => [qr/, trying 2 more times$/m, qr/, trying once more$/m, qr/^nativevnc: no webmks ticket after 3 tries: /m],
        not => qr/1 more times/,
    },

    # keys and text
    {
        what => 'a key name from another program',
        args => ['key', '--url', $vnc_url, 'Return'],
        status => 2,
        err => "nativevnc: No map for 'Return': not a key name; did you mean 'ret'? key names are esc, down, right, "
          . 'up, left, equal, spc, minus, shift, ctrl, caps, meta, alt, altgr, ret, tab, backspace, end, delete, '
          . "home, insert, pgup, pgdn, sysrq, super, f1 to f12, and single characters as a US keyboard types them\n",
    },
    {
        what => 'a character that no US key types',
        args => ['type', '--url', $vnc_url, "gr\xc3\xbc\xc3\x9fe"],
        status => 2,
        err => "nativevnc: No map for '\x{fc}': no key of a US keyboard types this character (U+00FC); only the "
          . "characters a US keyboard types (printable ASCII) are supported\n",
    },
    {
        what => 'an empty chord',
        args => ['key', '--url', $vnc_url, ''],
        status => 2,
        err => "nativevnc: no key in '': name a key or a chord, such as ret or ctrl-alt-f2\n",
    },
    {
        what => 'an unknown escape',
        args => ['type', '--url', $vnc_url, 'dir C:\temp\x'],
        status => 2,
        err => q{nativevnc: unknown escape '\x' in the text: \n presses Return, \t Tab, \b Backspace, \e Escape, }
          . q{\\\\ types a backslash; --literal types the text as it is} . "\n",
    },
    {
        what => 'a single backslash at the end',
        args => ['type', '--url', $vnc_url, 'end\\'],
        status => 2,
        err => q{nativevnc: the text ends in a single backslash: write \\\\ to type a backslash, or give --literal}
          . "\n",
    },

    # options
    {
        what => 'a screenshot format that is not written',
        args => ['screenshot', '--url', $vnc_url, '--out', "$tmp/shot.jpg"],
        status => 2,
        err => "nativevnc: --out $tmp/shot.jpg: the file name must end in .png (PNG) or .ppm (PPM), the formats a "
          . "screenshot is written in\n",
        absent => ["$tmp/shot.jpg"],
    },
    {
        what => 'an encoding number nobody knows',
        args => ['screenshot', '--url', $vnc_url, '--out', "$tmp/x.png", '--encodings', 'zrle,999'],
        status => 2,
        err => "nativevnc: unknown encoding '999': see --help for the names (or their numbers)\n",
    },
    {
        what => 'an unknown encoding name',
        args => ['screenshot', '--url', $vnc_url, '--out', "$tmp/x.png", '--encodings', 'h264'],
        status => 2,
        err => "nativevnc: unknown encoding 'h264': see --help for the names (or their numbers)\n",
    },
    (
        map {
            my ($command, $option, $value) = @$_;
            +{
                what => "$command has no $option",
                args => [$command, '--url', $webmks, $option, $value],
                status => 2,
                err => qr/^error: unexpected argument '\Q$option\E' found$/m,
            }
        } (['ticket', '--encodings', 'raw'], ['ticket', '--connect-timeout', '5'], ['proxy', '--encodings', 'raw'])
    ),

    # connecting
    {
        what => 'a server that accepts but never answers',
        args => ['screenshot', '--url', "vnc://127.0.0.1:$silent_port", '--connect-timeout', '3', '--out', "$tmp/x.png"],
        status => 1,
        err => "nativevnc: connecting to 127.0.0.1:$silent_port did not finish within 3 s\n",
        max => 6,
    },
    {
        what => 'a refused port, retried until --connect-timeout',
        args => ['screenshot', '--url', "vnc://127.0.0.1:$closed", '--connect-timeout', '1.5', '--out', "$tmp/x.png"],
        status => 1,
        err => "nativevnc: connecting to 127.0.0.1:$closed: Connection refused (os error 111); trying again until "
          . "1.5 s have passed (--connect-timeout)\n"
          . "nativevnc: no connection within 1.5 s: connecting to 127.0.0.1:$closed: Connection refused "
          . "(os error 111)\n",
    },

    # help
    {
        what => 'ticket --help lists only what ticket takes',
        args => ['ticket', '--help'],
        status => 0,
        out => qr{--url <URL>\s+The VM's webmks console, webmks\+https://USER:PASSWORD\@HOST\[:PORT\]/VM},
        not => qr{vnc://|--encodings|--connect-timeout},
    },
    {
        what => 'proxy --help lists only what proxy takes',
        args => ['proxy', '--help'],
        status => 0,
        out => qr{--connect-timeout <SECONDS>\s+Seconds a viewer's webmks connection may take to open},
        not => qr{vnc://|--encodings},
    },
    {
        what => 'type --help explains the escapes',
        args => ['type', '--help'],
        status => 0,
        out => [qr/\\n presses Return, \\t Tab, \\b Backspace, \\e Escape, and \\\\ types\s+one backslash/, qr/--literal/],
        not => qr/"\\n" presses Return/,
    },
    {
        what => 'key --help lists the key names',
        args => ['key', '--help'],
        status => 0,
        out => qr/Key names: esc, ret, tab, spc, backspace,/,
    },
    {
        what => '--help gives the exit statuses',
        args => ['--help'],
        status => 0,
        out => re(qr/Exit status: 0 success, 1 the server could not be reached or the connection failed, 2 usage or\s+/,
          qr/configuration error, 3 authentication failed/),
    },
);

for my $case (@cases) {
    subtest $case->{what} => sub {
        $case->{setup}->() if $case->{setup};
        my $start = time;
        my ($status, $out, $err) = run_nativevnc({ env => $case->{env}, timeout => 30 }, @{ $case->{args} });
        my $took = time - $start;
        is($status, $case->{status}, "exit status $case->{status}") or diag "stderr: $err";
        my $want = $case->{err} // '';
        if (ref $want) {
            like($err, $_, 'stderr') for ref $want eq 'ARRAY' ? @$want : $want;
        } else {
            is($err, $want, 'stderr');
        }
        like($out, $_, 'stdout') for ref $case->{out} eq 'ARRAY' ? @{ $case->{out} } : grep { defined } $case->{out};
        is($out, '', 'nothing on stdout') if !defined $case->{out} && $case->{status};
        unlike($out . $err, $case->{not}, 'and nothing it must not say') if $case->{not};
        ok(!-e $_, "$_ not written") for @{ $case->{absent} // [] };
        my $max = $case->{max} // 10;
        cmp_ok($took, '<', $max, "within $max s");
    };
}

subtest 'a refused port is said at once' => sub {
    my $start = time;
    my $run = spawn_nativevnc({}, 'screenshot', '--url', "vnc://127.0.0.1:$closed", '--out', "$tmp/x.png");
    my $said = wait_until(3, 'the first refusal on stderr',
        sub { read_text($run->{err}) =~ /^(nativevnc: connecting to .*; trying again until 20 s have passed.*)$/m && $1 });
    like($said, qr/Connection refused/, 'why: connection refused');
    cmp_ok(time - $start, '<', 3, 'before the 20 s of --connect-timeout are over');
    stop_group($run->{pid});
};

subtest 'type: escapes and --literal, as seen by the guest' => sub {
    my ($status, undef, $err) =
      run_nativevnc({}, 'type', '--url', $vnc_url, '--literal', q{printf %s 'a\tb\n' > /tmp/literal});
    is($status, 0, '--literal') or diag $err;
    ($status, undef, $err) = run_nativevnc({}, 'type', '--url', $vnc_url, '\n');
    is($status, 0, '\n alone presses Return') or diag $err;
    is(wait_until(20, 'the literal command ran', sub { $guest->run('cat /tmp/literal 2>/dev/null || true') }),
        'a\tb\n', '--literal typed the backslashes');

    ($status, undef, $err) = run_nativevnc({}, 'type', '--url', $vnc_url, q{printf %s 'c\\\\d' > /tmp/escaped\n});
    is($status, 0, 'escapes') or diag $err;
    is(wait_until(20, 'the escaped command ran', sub { $guest->run('cat /tmp/escaped 2>/dev/null || true') }),
        'c\d', '\\\\ typed one backslash, \n pressed Return');
};

done_testing;
