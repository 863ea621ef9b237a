#!/usr/bin/perl
# The nativevnc command against QEMU with a VNC password: screenshot (compared with QEMU's screendump),
# type and key (checked inside the guest), and its errors and exit codes.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use IPC::Open3;
use Symbol 'gensym';

use lib 't/lib';
use NativeVNC::Test::Guest;
use NativeVNC::Test::Util qw(repo_root wait_until free_tcp_port);

$SIG{ALRM} = sub { diag 'test did not finish within 240 s'; exit 1 };
alarm 240;

my $nativevnc = repo_root() . '/target/release/nativevnc';
ok(-x $nativevnc, 'the program is built') or BAIL_OUT("$nativevnc missing: run make");

my $password = 'pa@sw0rd';
my $tmp = tempdir(CLEANUP => 1);

# Runs nativevnc; returns (exit status, stdout, stderr).
sub nativevnc (@args) {
    my %env = ref $args[0] eq 'HASH' ? %{ shift @args } : ();
    local @ENV{keys %env} = values %env;
    my $pid = open3(my $in, my $out, my $err = gensym, $nativevnc, @args);
    close $in;
    my $stdout = do { local $/; <$out> } // '';
    my $stderr = do { local $/; <$err> } // '';
    waitpid $pid, 0;
    return ($? >> 8, $stdout, $stderr);
}

my $guest = NativeVNC::Test::Guest->start(password => $password);
$guest->wait_ready;
my $hostport = join ':', $guest->vnc_host, $guest->vnc_port;
my $url = "vnc://:pa%40sw0rd\@$hostport";

subtest 'screenshot equals the server\'s own screendump' => sub {
    my ($status, $out, $err) = nativevnc('screenshot', '--url', $url, '--out', "$tmp/shot.ppm");
    is($status, 0, 'exit status 0') or diag $err;
    is($out, "$tmp/shot.ppm\n", 'prints where the screenshot is');
    my $shot = NativeVNC::Test::Guest::read_ppm("$tmp/shot.ppm");
    my $truth = $guest->screendump;
    is("$shot->{width}x$shot->{height}", "$truth->{width}x$truth->{height}", 'same size');
    ok($shot->{rgb} eq $truth->{rgb}, 'same pixels');

    ($status, undef, $err) = nativevnc({NATIVEVNC_PASSWORD => $password},
        'screenshot', '--url', "vnc://$hostport", '--out', "$tmp/shot.png", '--encodings', 'hextile,desktopsize');
    is($status, 0, 'the password from NATIVEVNC_PASSWORD, Hextile, PNG output') or diag $err;
    open my $fh, '<:raw', "$tmp/shot.png" or die $!;
    read $fh, my $magic, 8;
    is($magic, "\x89PNG\r\n\x1a\n", 'a PNG file');
};

subtest 'type and key reach the guest' => sub {
    my ($status, undef, $err) = nativevnc('type', '--url', $url, 'echo cli-$((2 + 3)) A@_ > /tmp/cli' . "\n");
    is($status, 0, 'type exits 0') or diag $err;
    is(wait_until(20, 'the typed command ran', sub { $guest->run('cat /tmp/cli 2>/dev/null || true') }),
        'cli-5 A@_', 'the guest ran exactly what was typed');

    nativevnc('type', '--url', $url, 'echo wrong');
    ($status, undef, $err) = nativevnc('key', '--url', $url, 'ctrl-u');
    is($status, 0, 'key exits 0') or diag $err;
    nativevnc('type', '--url', $url, "echo right > /tmp/key\n");
    is(wait_until(20, 'the command ran', sub { $guest->run('cat /tmp/key 2>/dev/null || true') }),
        'right', 'ctrl-u erased the pending line');
};

subtest 'errors and exit codes' => sub {
    my ($status, $out, $err) = nativevnc('screenshot', '--url', "vnc://:Xq7zWr9k\@$hostport", '--out', "$tmp/x.png");
    is($status, 3, 'wrong password: exit status 3');
    like($err, qr/^nativevnc: .*authentication failed/m, 'says authentication failed');
    unlike($err . $out, qr/Xq7zWr9k|\Q$password\E/, 'and shows no password');
    ok(!-e "$tmp/x.png", 'writes no file');

    ($status, undef, $err) = nativevnc('screenshot', '--url', "vnc://$hostport", '--out', "$tmp/x.png");
    is($status, 3, 'no password: exit status 3');
    like($err, qr/requires a password/, 'says a password is required');

    my $closed = free_tcp_port();
    ($status, undef, $err) =
      nativevnc('screenshot', '--url', "vnc://127.0.0.1:$closed", '--out', "$tmp/x.png", '--connect-timeout', '1');
    is($status, 1, 'nothing listening: exit status 1');
    like($err, qr/connecting to 127\.0\.0\.1:$closed: Connection refused/, 'says where and why');

    ($status, undef, $err) = nativevnc('key', '--url', $url, 'ctrl-nosuchkey');
    is($status, 2, 'unknown key: exit status 2');
    like($err, qr/No map for 'nosuchkey'/, 'with os-autoinst\'s message');

    ($status, undef, $err) = nativevnc('screenshot', '--url', "http://$hostport", '--out', "$tmp/x.png");
    is($status, 2, 'wrong URL scheme: exit status 2');
    like($err, qr/unsupported URL scheme 'http'/, 'explained');

    ($status, undef, $err) = nativevnc('screenshot', '--url', $url, '--out', "$tmp/x.png", '--encodings', 'h264');
    is($status, 2, 'unknown encoding: exit status 2');
    like($err, qr/unknown encoding 'h264'/, 'explained');

    ($status, $out) = nativevnc('--help');
    is($status, 0, '--help exits 0');
    like($out, qr/screenshot.*type.*key/s, 'and lists the commands');
};

done_testing;
