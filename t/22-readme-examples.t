#!/usr/bin/perl
# The examples of README.md's "The nativevnc program" run as shown. Every line of the section's code block that
# starts with `nativevnc` is taken, its placeholders are replaced by real values, and /bin/sh runs it (in a
# temporary directory, with target/release first in PATH; the comment at its end is left out); then its outcome is checked against a real QEMU guest
# and webmks-sim in front of it. The replacements, word by word:
#
#   vnc://...              the guest's VNC server, vnc://:PASSWORD@127.0.0.1:PORT
#   webmks+https://...     the simulator's VM, webmks+https://root:PASSWORD@127.0.0.1:PORT/vm-7
#   CA.pem                 the simulator's certificate (self-signed: it is its own CA)
#   SHA256                 the simulator's certificate's SHA-256 thumbprint
#   127.0.0.1:5901         127.0.0.1 and a free port
#
# Everything else stays as written. An example this test has no check for fails, as does a placeholder left over.
use v5.36;
use Test::More;
use Encode qw(decode);
use File::Temp 'tempdir';

use lib 't/lib', '/usr/lib/os-autoinst';
use bmwqemu;
use cv;
use NativeVNC::Test::Cli qw(run_nativevnc spawn_nativevnc read_text);
use NativeVNC::Test::Guest;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Image qw(read_ppm differing_pixels);
use NativeVNC::Test::Util qw(repo_root wait_until free_tcp_port stop_group slurp_or_die);

cv::init();
require tinycv;

$SIG{ALRM} = sub { diag 'test did not finish within 300 s'; exit 1 };
alarm 300;

# The section's example lines.
sub examples () {
    my $readme = repo_root() . '/README.md';
    my $text = decode('UTF-8', slurp_or_die($readme));
    my ($section) = $text =~ /^## The nativevnc program\n(.*?)(?=^## )/ms or die 'no "The nativevnc program" section';
    return map { /^    (nativevnc .*?)(?:\s+#\s.*)?$/ ? $1 : () } split /\n/, $section;
}

my @examples = examples();
cmp_ok(scalar @examples, '>=', 6, 'the README has its examples') or BAIL_OUT('no examples found');

my $tmp = tempdir(CLEANUP => 1);
my $vnc_password = 'readme1';
my $guest = NativeVNC::Test::Guest->start(password => $vnc_password);
$guest->wait_ready;
my $sim = NativeVNC::Test::WebmksSim->start(
    vnc_host => $guest->vnc_host, vnc_port => $guest->vnc_port, vnc_password => $vnc_password,
    password => 'Readme-pw2', args => ['--vm', 'demo-vm,moid=vm-7']);

my %value = (
    vnc => sprintf('vnc://:%s@%s:%d', $vnc_password, $guest->vnc_host, $guest->vnc_port),
    webmks => sprintf('webmks+https://root:%s@%s:%d/vm-7', $sim->password, $sim->host, $sim->port),
    ca => $sim->cert_file,
    sha256 => $sim->sha256,
);
for my $v (values %value) {
    die "'$v' would need quoting in a shell" unless $v =~ m{\A[\w:/@.+\-]+\z};
}

sub substitute ($line) {
    my @words = map {
        m{^vnc://} ? $value{vnc}
          : m{^webmks\+https://} ? $value{webmks}
          : $_ eq 'CA.pem' ? $value{ca}
          : $_ eq 'SHA256' ? $value{sha256}
          : $_ eq '127.0.0.1:5901' ? '127.0.0.1:' . free_tcp_port()
          : $_
    } split / /, $line;
    return join ' ', @words;
}

# Runs an example in its own directory; returns (status, stdout, stderr, directory).
sub run_example ($command) {
    my $dir = tempdir(DIR => $tmp);
    return (run_nativevnc({ shell => $command, dir => $dir, timeout => 60 }), $dir);
}

# The picture in a PNG or PPM file, as {width, height, rgb}, read by OpenCV (through tinycv).
sub read_image ($path) {
    my $image = tinycv::read($path) or die "tinycv cannot read $path";
    my $ppm = "$path.ppm";
    $image->write($ppm) or die "tinycv cannot write $ppm";
    return read_ppm($ppm);
}

# The text on the guest's first console, line by line (128 columns a line).
sub console_lines () {
    return map { s/\s+\z//r } unpack '(A128)*', $guest->run('cat /dev/vcs1');
}

# Whether the guest's console shows `$command` typed at the prompt and what it printed on the next line.
sub console_shows ($command, $output) {
    my @lines = console_lines();
    for my $i (0 .. $#lines - 1) {
        return 1 if $lines[$i] eq "/ # $command" && $lines[$i + 1] eq $output;
    }
    return 0;
}

my %checks = (
    screenshot => sub ($command, $status, $out, $err, $dir) {
        is($status, 0, 'exit status 0') or diag $err;
        my ($file) = $command =~ /--out (\S+)/;
        is($out, "$file\n", 'prints the file name');
        is(scalar differing_pixels(read_image("$dir/$file"), $guest->screendump), 0, 'the guest\'s screendump');
    },
    type => sub ($command, $status, $out, $err, $dir) {
        is($status, 0, 'exit status 0') or diag $err;
        my ($text) = $command =~ / '([^']*)'$/;
        is($text, 'echo hello\n', 'the text checked here');
        ok(eval { wait_until(20, 'the typed command on the console', sub { console_shows('echo hello', 'hello') }) },
            'the guest ran echo hello: Return was pressed') or diag $@, join "\n", grep { length } console_lines();
    },
    key => sub ($command, $status, $out, $err, $dir) {    # (the second console was allocated before it ran)
        is($status, 0, 'exit status 0') or diag $err;
        my ($chord) = $command =~ / (\S+)$/;
        is($chord, 'ctrl-alt-f2', 'the chord checked here');
        my $active = '';
        eval {
            wait_until(20, 'the console switch', sub { ($active = $guest->run('cat /sys/class/tty/tty0/active')) eq 'tty2' });
        };
        is($active, 'tty2', 'ctrl-alt-f2 switched to the second console');
        $guest->run('chvt 1');
    },
    ticket => sub ($command, $status, $out, $err, $dir) {
        is($status, 0, 'exit status 0') or diag $err;
        like($out, qr{\Awss://127\.0\.0\.1:\d+/ticket/\S+\n\z}, 'prints a wss:// URL');
    },
);

# The kernel switches only to allocated consoles; opening one allocates it.
$guest->run('true < /dev/tty2');

for my $example (@examples) {
    my $command = substitute($example);
    subtest $example => sub {
        unlike($command, qr/\b(?:HOST|PORT|USER|PASSWORD|VM)\b|\.\.\./, 'no placeholder left');
        my ($subcommand) = $command =~ /^nativevnc (\w+)/;
        if ($subcommand eq 'proxy') {
            my $dir = tempdir(DIR => $tmp);
            my $run = spawn_nativevnc({ shell => $command, dir => $dir });
            my ($address) = $command =~ /--listen (\S+)/;
            my $said = wait_until(10, 'the proxy listening', sub { read_text($run->{out}) =~ /^(.*listening.*)$/m && $1 });
            is($said, "nativevnc proxy listening on $address", 'says where it listens');
            my ($status, undef, $err) =
              run_nativevnc({}, 'screenshot', '--url', "vnc://$address", '--out', "$dir/viewer.ppm");
            is($status, 0, 'a VNC client connects through it') or diag $err, read_text($run->{err});
            is(scalar differing_pixels(read_image("$dir/viewer.ppm"), $guest->screendump), 0, '... and sees the screen');
            stop_group($run->{pid});
            return;
        }
        my $check = $checks{$subcommand} or return fail("no check for '$subcommand' examples");
        $check->($command, run_example($command));
    };
}

done_testing;
