#!/usr/bin/perl
# consoles::NativeVNC against QEMU's VNC server in front of a real Linux guest, inside os-autoinst's world
# (bmwqemu, tinycv, OpenQA::Exceptions): the screen equals QEMU's own screendump, typing reaches the guest's
# shell exactly (checked through the guest's serial console and on the screen), chords, pointer events, a
# fork, a signal storm, and the server dying mid-session.
use v5.36;
use Test::More;
use File::Temp 'tempdir';
use Config;
use POSIX ();
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::OsAutoinst qw(deadline capture_log);
use NativeVNC::Test::Guest;
use NativeVNC::Test::Util qw(wait_until group_pids slurp_or_die);

use consoles::NativeVNC;

deadline(300);
my @warnings;
capture_log(warn => \@warnings);

my $tmp = tempdir(CLEANUP => 1);
my $guest = NativeVNC::Test::Guest->start(
    qemu_args => [map { ('-trace', $_) } qw(input_event_btn input_event_rel vnc_key_event_ext vnc_key_event_map)]);
$guest->wait_ready;

sub qemu_log () {
    return slurp_or_die($guest->qemu_log_path);
}

sub type_text ($vnc, $text) {
    my %names = ("\n" => 'ret', ' ' => 'spc', '-' => 'minus', "\t" => 'tab');
    $vnc->map_and_send_key($names{$_} // $_, undef, 0.25 / 30) for split //, $text;
}

my $vnc = consoles::NativeVNC->new({hostname => $guest->vnc_host, port => $guest->vnc_port});
subtest 'login and the first screen' => sub {
    is($vnc->login, undef, 'login');
    is($vnc->width, 1024, 'width from ServerInit');
    is($vnc->height, 768, 'height from ServerInit');
    is($vnc->_rfb_version, '003.008', 'RFB 3.8');
    ok($vnc->socket, 'a socket handle while connected');
    ok($vnc->socket->connected, '... that says it is connected');
    is($guest->console_matches($vnc, 'the first screen', 20), 0, 'the framebuffer equals QEMU\'s screendump');
    isa_ok($vnc->_framebuffer, 'tinycv::Image', 'the framebuffer');
    ok($vnc->encoding_counts->{16}, 'QEMU sent ZRLE, the default first choice');
    my $counters = $vnc->counters;
    cmp_ok($counters->{pixels}, '>=', 1024 * 768, 'the pixels of at least the whole screen arrived');
    cmp_ok($counters->{pixel_updates}, '>=', 1, '... in updates that carried pixels');
    cmp_ok($counters->{updates}, '>=', $counters->{pixel_updates}, '... among all the updates');
    cmp_ok($counters->{messages}, '>=', $counters->{updates}, '... among all the messages');
};

subtest 'typing reaches the guest exactly' => sub {
    my $text = q{echo "$((1234 + 4321)) A@z_~!#%^&*()+={}[]|:;<>,.?/" > /tmp/typed};
    type_text($vnc, "$text\n");
    my $typed = wait_until(20, 'the typed command ran', sub { $guest->run('cat /tmp/typed 2>/dev/null || true') });
    is($typed, q{5555 A@z_~!#%^&*()+={}[]|:;<>,.?/}, 'the shell received every character, shifted ones included');
    like(qemu_log(), qr/vnc_key_event_ext down 1, sym 0x40, keycode 0x3 /, 'keys went as scancodes: @ is the 2 key');

    type_text($vnc, "echo \$((6 * 7))0042\n");
    # The keys are sent; let the guest echo them and run the command (slow under load) before comparing.
    $guest->wait_screen_stable(30, 0.5);
    is($guest->console_matches($vnc, 'the screen after typing', 20), 0, 'the screen equals the screendump after typing');
    $vnc->_framebuffer->write("$tmp/typed.png");
    my $ocr = `tesseract $tmp/typed.png - 2>/dev/null`;
    like($ocr, qr/^420042\s*$/m, "the command's output is on the screen (OCR)") or diag $ocr;
};

subtest 'chords and key states' => sub {
    type_text($vnc, 'echo wrong');
    $vnc->map_and_send_key('ctrl-u', undef, 1 / 30);    # busybox ash: erase the line typed so far
    type_text($vnc, "echo right > /tmp/chord\n");
    is(wait_until(20, 'the command ran', sub { $guest->run('cat /tmp/chord 2>/dev/null || true') }),
        'right', 'ctrl-u erased the line: a chord worked');

    type_text($vnc, 'echo ');
    $vnc->map_and_send_key('shift', 1, 1 / 30);    # hold shift, as vnc_base::hold_key does
    $vnc->map_and_send_key('x', undef, 1 / 30);
    $vnc->map_and_send_key('shift', 0, 1 / 30);    # and release it, as release_key does
    type_text($vnc, "x > /tmp/held\n");
    is(wait_until(20, 'the command ran', sub { $guest->run('cat /tmp/held 2>/dev/null || true') }),
        'Xx', 'a held shift applies to the next key only until released');

    like((eval { $vnc->map_and_send_key('ctrl-nosuchkey', undef, 0.01); 1 } ? '' : $@),
        qr/^No map for 'nosuchkey': not a key name; key names are esc, .*$/, 'unknown key: os-autoinst\'s message start');
    like((eval { $vnc->map_and_send_key('a', undef, 0); 1 } ? '' : $@), qr/^need delay/, 'a delay is required');
};

subtest 'pointer events reach QEMU' => sub {
    $vnc->mouse_click(100, 200);
    $vnc->mouse_right_click(300, 400);
    $vnc->mouse_move_to(1023, 767);
    my $log = wait_until(10, 'pointer events traced', sub { my $l = qemu_log(); $l =~ /button right, down 0/ && $l });
    like($log, qr/input_event_btn con \d+, button left, down 1.*button left, down 0/s, 'left click');
    like($log, qr/button right, down 1.*button right, down 0/s, 'right click');
    like($log, qr/input_event_rel/, 'moves arrive (QEMU relative mouse here)');
    is($vnc->absolute, 0, 'QEMU reported a relative pointer (pointer type change)');
};

subtest 'plain keysyms where scancodes are switched off' => sub {
    my $client = NativeVNC::Client->new;
    $client->connect({host => $guest->vnc_host, port => $guest->vnc_port, scancode_keys => 0});
    $client->request_update(0);
    ok($client->wait_update(10), 'first screen');
    is($client->status->{scancodes}, 0, 'keys go as keysyms');
    my %names = (' ' => 'spc', "\n" => 'ret');
    for my $char (split //, "echo k > /tmp/plain\n") {
        my @chord = NativeVNC::key_chord($names{$char} // $char);
        $client->key($_, 1), sleep 0.01 for @chord;
        $client->key($_, 0), sleep 0.01 for reverse @chord;
    }
    is(wait_until(20, 'the command ran', sub { $guest->run('cat /tmp/plain 2>/dev/null || true') }), 'k',
        'typed with X11 keysyms');
    like(qemu_log(), qr/vnc_key_event_map down 1, sym 0x6b -> keycode 0x25 \[k\]/, 'QEMU mapped the keysym itself');
    $client->disconnect;
};

subtest 'a forked child connects on its own' => sub {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $ok = eval {
            my $child = consoles::NativeVNC->new({hostname => $guest->vnc_host, port => $guest->vnc_port});
            $child->login;
            $child->send_update_request(0);
            my $deadline = time + 10;
            sleep 0.02 until $child->update_framebuffer || time > $deadline;
            die 'no screen in the child' unless $child->_framebuffer && $child->_framebuffer->xres == 1024;
            # The parent's object in the child: its connection belongs to the parent, a login makes a new one.
            $vnc->login;
            $vnc->send_update_request(0);
            $deadline = time + 10;
            sleep 0.02 until $vnc->update_framebuffer || time > $deadline;
            1;
        };
        print STDERR "child: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    waitpid $pid, 0;
    is($?, 0, 'the child logged in and received the screen, also through the object it inherited');
    $vnc->send_update_request(0);
    is($guest->console_matches($vnc, 'the parent after the fork', 20), 0, 'the parent\'s connection still works');
};

# The signal mask of each thread of this process, by thread name.
sub thread_masks () {
    my %masks;
    for my $task (glob "/proc/$$/task/*") {
        open my $comm, '<', "$task/comm" or next;
        chomp(my $name = <$comm>);
        open my $status, '<', "$task/status" or next;
        no warnings 'portable';
        my ($blocked) = map { /^SigBlk:\s*([0-9a-f]+)/ ? hex $1 : () } <$status>;
        push @{ $masks{$task =~ m{/(\d+)$} && $1 == $$ ? 'perl' : $name } }, $blocked;
    }
    return \%masks;
}

subtest 'signals go to perl, never to the core\'s threads' => sub {
    my $masks = thread_masks();
    ok(@{ $masks->{nativevnc} // [] }, 'the core runs threads named nativevnc');
    my %number;
    @number{split ' ', $Config{sig_name}} = split ' ', $Config{sig_num};
    my @signals = @number{qw(HUP INT QUIT PIPE ALRM TERM CHLD USR1 USR2 WINCH)};
    for my $mask (@{ $masks->{nativevnc} }) {
        is_deeply([grep { !($mask & (1 << ($_ - 1))) } @signals], [], sprintf('a core thread blocks them all (%x)', $mask));
    }
    is($masks->{perl}[0] & (1 << ($number{USR1} - 1)), 0, 'perl\'s own thread still takes signals');

    # A storm of several different signals at a process whose core is busy decoding full Raw updates of a
    # noisy screen. The kernel hands a signal to another thread when the main thread already has one
    # pending, so without the protection perl's handler runs on a core thread and the process crashes
    # (SIGSEGV, seen every time when the runtime threads do not block signals).
    $guest->run('(for i in $(seq 20); do dd if=/dev/urandom of=/dev/fb0 bs=4096 count=200 2>/dev/null; done) &');
    for my $round (1 .. 2) {
        my $victim = fork // die "fork: $!";
        if ($victim == 0) {
            my ($signals, $updates) = (0, 0);
            @SIG{qw(USR1 USR2 ALRM WINCH)} = (sub { ++$signals }) x 4;
            my $client = NativeVNC::Client->new;
            $client->connect({host => $guest->vnc_host, port => $guest->vnc_port, encodings => [0, -223]});
            my $until = time + 3;
            while (time < $until) {
                eval {
                    $client->request_update(0);
                    $updates += $client->wait_update(0.5);
                    $client->poll;
                    $client->take_damage;
                };
            }
            # Pending standard signals coalesce: the handlers run far fewer times than signals are sent.
            POSIX::_exit($signals > 0 && $updates > 0 ? 0 : 2);
        }
        my $storm = fork // die "fork: $!";
        if ($storm == 0) {
            sleep 0.5;
            for (1 .. 50000) {
                kill $_, $victim for qw(USR1 USR2 ALRM WINCH);
            }
            POSIX::_exit(0);
        }
        waitpid $storm, 0;
        waitpid $victim, 0;
        is($?, 0, "round $round: the process survived the storm, handled signals and decoded updates");
    }
    $guest->run('sleep 1');
    is($guest->console_matches($vnc, 'the screen after the storm', 20), 0, 'this process\'s connection still matches the screendump');
};

subtest 'the server dies mid-session' => sub {
    local $bmwqemu::vars{VNC_CONNECT_TIMEOUT_LOCAL} = 2;
    local $bmwqemu::vars{VNC_CONNECT_SLEEP} = 0.2;
    @warnings = ();
    my $pid = $guest->pid;
    $guest->kill;
    my $started = time;
    my $error = eval {
        wait_until(10, 'the broken connection noticed', sub { $vnc->update_framebuffer; 0 });
        1;
    } ? undef : $@;
    isa_ok($error, 'OpenQA::Exception::VNCSetupError', 'the relogin after the break');
    like($error->error, qr/^Error connecting to VNC server <127\.0\.0\.1:\d+>: connecting to 127\.0\.0\.1:\d+: /,
        '... says where it could not connect');
    like(join("\n", @warnings), qr/Error in VNC protocol - relogin: the server closed the connection/,
        'the broken stream was logged before the relogin');
    cmp_ok(time - $started, '<', 8, 'within the connect timeout');
    ok(!kill(0, $pid), 'QEMU is gone');
    is_deeply([group_pids($pid)], [], 'nothing of it left');
};

done_testing;
