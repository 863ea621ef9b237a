#!/usr/bin/perl
# VMware's own webmks client against webmks-sim: wmks.js 2.1.4 (HTML Console SDK, npm opennebula-wmks) in
# Debian's headless chromium, driven by t/wmks/driver.mjs, connects to a ticket URL for a real Linux guest.
# Its canvas must equal QEMU's screendump pixel for pixel, the text it types must arrive in the guest, and on a
# static screen it must not be flooded with updates: the simulator announces UpdateAck and numbers its updates,
# so wmks acknowledges each one instead of asking for the whole screen again.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use IPC::Open2 'open2';
use JSON::PP;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::Guest;
use NativeVNC::Test::WebmksSim;
use NativeVNC::Test::Image qw(read_ppm differing_pixels);
use NativeVNC::Test::Util qw(repo_root wait_until with_timeout signal_group reap slurp);

$SIG{ALRM} = sub { diag 'test did not finish within 300 s'; exit 1 };
alarm 300;

my $root = repo_root();
my $wmks_js = "$root/build/wmks/node_modules/opennebula-wmks/dist/wmks.js";
BAIL_OUT("$wmks_js is missing: run tools/setup-wmks") unless -f $wmks_js;
BAIL_OUT('chromium is missing: run tools/install-deps') unless -x '/usr/bin/chromium';

my $tmp = tempdir(CLEANUP => 1);
my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;
my $sim = NativeVNC::Test::WebmksSim->start(
    vnc_host => $guest->vnc_host,
    vnc_port => $guest->vnc_port,
    password => 'Sim:p@ss/w0rd',
    args => ['--vm', 'sut,moid=7']);

my $url = `$root/target/release/nativevnc ticket --ca-file @{[$sim->cert_file]} --url '@{[$sim->url(moid => 7)]}'`;
is($?, 0, 'a ticket from the simulator');
chomp $url;

# The driver in its own process group (setsid execs in place: its pid is the group's id), chromium with it;
# its stderr (the page's console) goes to a log.
my $driver_log = "$tmp/driver.log";
open my $saved_stderr, '>&', \*STDERR or die "dup STDERR: $!";
open STDERR, '>>', $driver_log or die "$driver_log: $!";
my $pid = open2(my $from_driver, my $to_driver, 'setsid', 'node', "$root/t/wmks/driver.mjs", $url);
open STDERR, '>&', $saved_stderr or die "restore STDERR: $!";
END {
    if ($pid) {
        local $?;
        signal_group($pid, 'TERM');
        signal_group($pid, 'KILL') unless defined reap($pid, 10);
        reap($pid, 10);
    }
}

my $json = JSON::PP->new->canonical;

# Sends a command to the driver and returns its reply; dies with the driver's log when it fails.
sub driver ($cmd, %args) {
    my $reply = with_timeout(60, "driver command $cmd", sub {
        print {$to_driver} $json->encode({ cmd => $cmd, %args }), "\n";
        $to_driver->flush;
        return scalar <$from_driver>;
    });
    die "the driver ended during '$cmd'; its log:\n" . (slurp($driver_log) // '') unless defined $reply;
    my $r = $json->decode($reply);
    die "driver command $cmd failed: $r->{error}\n" unless $r->{ok};
    return $r;
}

my $state = driver('connect');
is($state->{state}, 'connected', 'wmks.js reaches the connected state');
is($state->{error}, undef, 'without an error');
is($state->{version}, '2.1.0', 'wmks.js of HTML Console SDK 2.1 (npm opennebula-wmks 2.1.4)');
ok($state->{vmwKeyEvent}, 'the simulator announced VMware key events');
ok($state->{vmwAck}, 'and UpdateAck: wmks acknowledges updates instead of requesting them');

# Waits until the canvas equals the guest's screen; returns the number of differing pixels at the end.
sub canvas_diff () {
    my $canvas = "$tmp/canvas.ppm";
    my $diff = 'no canvas';
    wait_until(30, 'the canvas equal to the screendump', sub {
        driver('dump', file => $canvas);
        $diff = differing_pixels(read_ppm($canvas), $guest->wait_screen_stable);
        return $diff eq '0';
    }, max_interval => 0.5);
    return $diff;
}

is(canvas_diff(), 0, 'the canvas equals QEMU screendump pixel for pixel');

subtest 'a static screen gets few updates' => sub {
    $guest->wait_screen_stable;
    my $before = $sim->stats->{updates_sent};
    my $seconds = 3;
    sleep $seconds;
    my $updates = $sim->stats->{updates_sent} - $before;
    note "$updates updates in $seconds s";
    # Without update ids wmks asked for the whole screen after every update: about 160 a second. What is left
    # is the guest's blinking cursor.
    cmp_ok($updates, '<=', 10 * $seconds, 'at most a few a second');
};

subtest 'typing with sendInputString and sendKeyCodes' => sub {
    my $keys_before = $sim->stats->{vmw_key_events};
    my $text = q{echo "wmks A@z_~!#%^&*()+={}[]|:;<>,.?/" > /tmp/wmks};
    driver('type', text => $text);
    driver('keys', codes => [13]);
    my $typed = wait_until(30, '/tmp/wmks in the guest', sub { $guest->run('cat /tmp/wmks 2>/dev/null || true') });
    is($typed, q{wmks A@z_~!#%^&*()+={}[]|:;<>,.?/}, 'every character arrived, shifted ones too');
    cmp_ok($sim->stats->{vmw_key_events} - $keys_before, '>=', 2 * length $text, 'as VMWKeyEvent scancodes');
    is(canvas_diff(), 0, 'the canvas follows the screen: acknowledged updates are pushed as it changes');
};

is(driver('state')->{state}, 'connected', 'wmks is still connected at the end');
print {$to_driver} qq({"cmd":"quit"}\n);
close $to_driver;
is(reap($pid, 30), 0, 'the driver closed the browser and exited');
$pid = undef;
unlike(slurp($driver_log) // '', qr/page error|not supported/, 'no page errors, no unsupported wmks calls');

$sim->stop;
$guest->stop;
done_testing;
