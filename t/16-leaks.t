#!/usr/bin/perl
# No leaks over many connections in one process: 500 plain VNC connect/disconnect cycles against QEMU's VNC
# server in front of a real Linux guest, each with a new NativeVNC::Client that receives a full screen, and
# 200 webmks relogins of one consoles::NativeVNC through webmks-sim (each a new ticket from the simulated
# vSphere API, a TLS WebSocket and the VMware RFB handshake). Measured from /proc/self after a warm-up that
# lets the core create its runtime thread, the TLS configuration and the allocator's arenas: the open file
# descriptors and the threads are exactly what they were after the warm-up, and the resident set grows by
# at most a stated amount (the test names give the growth per cycle). The simulator's counters show that
# every vSphere API session was logged out.
use v5.36;

# glibc's malloc serves blocks of 128 KiB and more (framebuffers, 3 MiB) from the heap once one has been
# freed, raising its mmap threshold as it goes; whether a freed framebuffer then stays resident depends on
# the order of frees, and the resident set jumps by 3 MiB up or down between runs. A fixed threshold keeps
# large blocks in their own mappings, returned when freed: the resident set then follows what is live. The
# tunable is read at process start, so the test runs itself again with it set (not under perl -c).
BEGIN {
    my $tunable = 'glibc.malloc.mmap_threshold=131072';
    unless ($^C || ($ENV{GLIBC_TUNABLES} // '') =~ /\Q$tunable\E/) {
        $ENV{GLIBC_TUNABLES} = join ':', grep { length } $ENV{GLIBC_TUNABLES}, $tunable;
        $ENV{PERL5LIB} = join ':', grep { !ref } @INC;
        exec $^X, $0, @ARGV or die "cannot run $^X $0 again: $!\n";
    }
}

use Test::More;
use Time::HiRes qw(time);

use lib 't/lib';
use NativeVNC;
use consoles::NativeVNC;
use NativeVNC::Test::Guest;
use NativeVNC::Test::WebmksSim;

use constant {
    WARM_TCP => 50,       # warm-up: plain connections ...
    WARM_WEBMKS => 20,    # ... and webmks relogins
    TCP_CYCLES => 500,    # in all, warm-up included
    RELOGINS => 200,      # after the warm-up
    SAMPLE_EVERY => 50,   # RSS samples shown in the output
    # RSS growth allowed after a warm-up: 4.6 KiB per plain cycle, 10 KiB per relogin, and 8 MiB for the
    # whole run (with the relogins' warm-up). A client's framebuffer is 3 MiB; a leak of a few KiB a cycle
    # (socket buffers, a TLS session, a task) exceeds the bound.
    TCP_RSS_LIMIT_KIB => 2048,
    WEBMKS_RSS_LIMIT_KIB => 2048,
    TOTAL_RSS_LIMIT_KIB => 8192,
    FRAME_ATTEMPTS => 10,    # full update requests per connection, each waited for FRAME_WAIT seconds
    FRAME_WAIT => 1,
    RSS_SAMPLES => 5,
};

# Every wait below is bounded; this bounds the whole (about a minute on two cores, guest boot included).
$SIG{ALRM} = sub { diag 'test did not finish within 300 s'; exit 1 };
alarm 300;

# --- this process as /proc/self sees it ------------------------------------------------------------------

sub count_entries ($dir) {
    opendir my $dh, $dir or die "cannot read $dir: $!\n";
    return scalar grep { /^\d+$/ } readdir $dh;
}

sub rss_kib () {
    open my $fh, '<', '/proc/self/status' or die "cannot read /proc/self/status: $!\n";
    while (my $line = <$fh>) {
        return $1 if $line =~ /^VmRSS:\s+(\d+) kB$/;
    }
    die "no VmRSS in /proc/self/status\n";
}

# The directory handle open while /proc/self/fd is read is counted every time, so counts compare exactly.
# The RSS is the smallest of a few samples over 0.1 s: a connection's last buffers are freed on the core's
# thread just after the client is gone, and a framebuffer in flight is 3 MiB. A leak stays.
sub usage () {
    my $rss = rss_kib();
    for (1 .. RSS_SAMPLES - 1) {
        Time::HiRes::sleep(0.1 / RSS_SAMPLES);
        my $now = rss_kib();
        $rss = $now if $now < $rss;
    }
    return { fds => count_entries('/proc/self/fd'), threads => count_entries('/proc/self/task'), rss => $rss };
}

sub usage_text ($u) { return "$u->{fds} fds, $u->{threads} threads, RSS $u->{rss} KiB" }

# --- the servers -------------------------------------------------------------------------------------------

my $started = time;
my $password = 'leak-test';
my $guest = NativeVNC::Test::Guest->start;
$guest->wait_ready;
my $sim = NativeVNC::Test::WebmksSim->start(
    vnc_host => $guest->vnc_host,
    vnc_port => $guest->vnc_port,
    password => $password,
    args => ['--vm', 'sut,moid=7']);
note sprintf 'guest and simulator up in %.1f s', time - $started;

# --- one cycle of each kind --------------------------------------------------------------------------------

# A new client: connect, a full screen, its pixels taken, disconnect; the client goes out of scope.
sub tcp_cycle ($n) {
    my $client = NativeVNC::Client->new;
    $client->connect({host => $guest->vnc_host, port => $guest->vnc_port, connect_timeout => 10, io_timeout => 10});
    my $frame;
    for (1 .. FRAME_ATTEMPTS) {
        $client->request_update(0);
        last if $frame = $client->wait_update(FRAME_WAIT);
    }
    die "plain cycle $n: no screen within " . FRAME_ATTEMPTS * FRAME_WAIT . " s\n" unless $frame;
    my @rects = $client->take_damage;
    die "plain cycle $n: an update without rectangles\n" unless @rects;
    $client->disconnect;
}

# The same console logs in again, as os-autoinst does after a broken connection: a new ticket, a new TLS
# WebSocket, a new handshake; a full screen into its framebuffer; then the connection is closed.
$consoles::NativeVNC::USE_TINYCV = 0;
{ no warnings 'once'; $bmwqemu::vars{VMWARE_VNC_OVER_WS_CA_FILE} = $sim->cert_file }
my $console = consoles::NativeVNC->new({vmware_vnc_over_ws_url => $sim->url(moid => 7)});

sub relogin ($n) {
    $console->login;
    my $frame;
    for (1 .. FRAME_ATTEMPTS) {
        $console->send_update_request(0);
        my $deadline = time + FRAME_WAIT;
        until ($frame = $console->update_framebuffer) {
            last if time > $deadline;
            Time::HiRes::sleep(0.005);
        }
        last if $frame;
    }
    die "relogin $n: no screen within " . FRAME_ATTEMPTS * FRAME_WAIT . " s\n" unless $frame;
    $console->socket(undef);
}

# Runs $count cycles numbered from $first; notes the RSS every SAMPLE_EVERY cycles; returns the seconds taken.
sub run_cycles ($what, $cycle, $first, $count) {
    my $t0 = time;
    for my $n ($first .. $first + $count - 1) {
        $cycle->($n);
        note sprintf '%s %d: %s', $what, $n, usage_text(usage()) if $n % SAMPLE_EVERY == 0;
    }
    return time - $t0;
}

# --- the test ------------------------------------------------------------------------------------------------

# Each kind warms up before its measured cycles. The console keeps its client's framebuffer and its own
# image between logins (together about 9 MiB with the TLS setup): the relogins are measured from their own
# warm-up, and the whole run once the console is gone.
my $cold = usage();
note 'before the first connection: ', usage_text($cold);

my $seconds = run_cycles('plain cycle', \&tcp_cycle, 1, WARM_TCP);
my $warm = usage();
note sprintf 'after %d plain cycles of warm-up (%.1f s): %s', WARM_TCP, $seconds, usage_text($warm);
my $tcp_seconds = run_cycles('plain cycle', \&tcp_cycle, WARM_TCP + 1, TCP_CYCLES - WARM_TCP);
my $after_tcp = usage();

$seconds = run_cycles('relogin', \&relogin, 1, WARM_WEBMKS);
my $warm_webmks = usage();
note sprintf 'after %d relogins of warm-up (%.1f s): %s', WARM_WEBMKS, $seconds, usage_text($warm_webmks);
my $webmks_seconds = run_cycles('relogin', \&relogin, WARM_WEBMKS + 1, RELOGINS);
my $end = usage();
note 'at the end: ', usage_text($end);
undef $console;
my $gone = usage();
note 'without the console: ', usage_text($gone);

sub growth_ok ($from, $to, $cycles, $limit, $what) {
    my $growth = $to->{rss} - $from->{rss};
    cmp_ok($growth, '<=', $limit,
        sprintf '%s: RSS %d -> %d KiB, %+d KiB in %d cycles (%+.2f KiB per cycle; at most %d KiB)',
        $what, $from->{rss}, $to->{rss}, $growth, $cycles, $growth / $cycles, $limit);
}

subtest sprintf('%d plain connect/disconnect cycles (%.1f s, %.0f ms each)', TCP_CYCLES - WARM_TCP, $tcp_seconds,
    1000 * $tcp_seconds / (TCP_CYCLES - WARM_TCP)) => sub {
    is($after_tcp->{fds}, $warm->{fds}, "open file descriptors as after the warm-up ($warm->{fds})");
    is($after_tcp->{threads}, $warm->{threads}, "threads as after the warm-up ($warm->{threads})");
    growth_ok($warm, $after_tcp, TCP_CYCLES - WARM_TCP, TCP_RSS_LIMIT_KIB, 'after the warm-up');
};

subtest sprintf('%d webmks relogins (%.1f s, %.0f ms each)', RELOGINS, $webmks_seconds,
    1000 * $webmks_seconds / RELOGINS) => sub {
    is($end->{fds}, $warm->{fds}, "open file descriptors as after the first warm-up ($warm->{fds})");
    is($end->{threads}, $warm->{threads}, "threads as after the first warm-up ($warm->{threads})");
    growth_ok($warm_webmks, $end, RELOGINS, WEBMKS_RSS_LIMIT_KIB, 'after the warm-up');
    growth_ok($warm, $gone, TCP_CYCLES - WARM_TCP + WARM_WEBMKS + RELOGINS, TOTAL_RSS_LIMIT_KIB,
        'the whole run after the first warm-up, once the console is gone');

    # Asked only now: the HTTPS connection of this request is not among the descriptors counted above.
    my $stats = $sim->stats;
    my $relogins = WARM_WEBMKS + RELOGINS;
    is($stats->{logins}, $relogins, "the vSphere API saw $relogins logins");
    is($stats->{logouts}, $stats->{logins}, '... and as many logouts: every API session was closed');
    is($stats->{failed_logins}, 0, '... none failed');
    is($stats->{tickets_issued}, $relogins, 'a ticket per relogin');
    is($stats->{tickets_used}, $relogins, '... each used');
    is($stats->{sessions_open}, 0, 'no console session left open in the simulator');
};

note sprintf 'whole test: %.1f s', time - $started;
done_testing;
