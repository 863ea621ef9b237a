package NativeVNC::Test::Guest;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::UNIX;
use JSON::PP ();
use Time::HiRes qw(time sleep);

use NativeVNC::Test::Image qw(read_ppm differing_pixels);
use NativeVNC::Test::Util qw(repo_root free_tcp_port wait_until spawn_group signal_group reap alive file_tail);

our $READY_MARKER = 'NATIVEVNC-GUEST-READY';
my $json = JSON::PP->new->canonical;

=head1 NAME

NativeVNC::Test::Guest - a real Linux guest under QEMU (software emulation) whose VNC server the tests talk to

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::Guest;

  my $guest = NativeVNC::Test::Guest->start(password => 'secret');   # or no options: no VNC auth
  $guest->wait_ready;                          # serial ready marker, default timeout 180 s
  say $guest->run('uname -r');                 # output of a command on the serial control shell
  $guest->run('cat /dev/urandom > /dev/fb0 2>/dev/null; true');
  my $screen = $guest->screendump;             # {width => 1024, height => 768, rgb => "RGBRGB..."}
  connect_my_client($guest->vnc_host, $guest->vnc_port);
  $guest->kill;                                # SIGKILL now ("server died mid-session")
  $guest->stop;                                # or: graceful quit (DESTROY does this too)

=head1 DESCRIPTION

Boots C<vmlinuz> and C<initrd.gz> made by F<tools/build-guest> (directory C<$ENV{NATIVEVNC_GUEST_DIR}>, default
F<build/guest> in the repository) with

  qemu-system-x86_64 -accel tcg -m 256 -kernel vmlinuz -initrd initrd.gz
    -append 'vga=792 quiet loglevel=1' -display none -no-reboot
    -vnc 127.0.0.1:<display>,to=<display+100>[,password=on]<vnc_extra>
    -qmp unix:<dir>/qmp.sock,server=on,wait=off
    -chardev socket,id=serial0,path=<dir>/serial.sock,server=on,wait=on,logfile=<dir>/serial.log
    -serial chardev:serial0

in its own process group, never with KVM. The guest shows a root shell (prompt C</ # >) on its 1024x768
framebuffer console, which is what the VNC server shows; a second, non-interactive shell on the serial port
runs the commands of C<run>. QEMU's stdout and stderr go to C<< $guest->qemu_log_path >>, everything the guest
wrote to the serial port to C<< $guest->serial_log_path >> (a temporary directory removed at exit unless
C<NATIVEVNC_KEEP_TMP> is set).

=head1 METHODS

=head2 start(%opt)

Starts QEMU and connects to its serial port and QMP. Options: C<password> (VNC password, at most 8 characters,
set with QMP C<change-vnc-password>; the server then requires VNC authentication), C<vnc_extra> (appended to the
C<-vnc> option, e.g. C<',lossy=on'>), C<memory> (MiB, default 256), C<qemu_args> (array of extra arguments),
C<start_timeout> (seconds for the sockets to appear, default 30). Dies with "run tools/build-guest first" when
the guest files are missing.

=cut

sub guest_dir ($class = undef) {
    return $ENV{NATIVEVNC_GUEST_DIR} // repo_root() . '/build/guest';
}

sub start ($class, %opt) {
    my $dir = guest_dir();
    for my $file (qw(vmlinuz initrd.gz)) {
        croak "guest file $dir/$file missing: run tools/build-guest first" unless -s "$dir/$file";
    }
    my $tmp = tempdir('nativevnc-guest-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{NATIVEVNC_KEEP_TMP});
    my $self = bless {
        opt => \%opt, dir => $dir, tmp => $tmp, owner => $$, serial_buffer => '', qmp_buffer => '',
        events => [], sequence => 0, ready => 0,
    }, $class;
    $self->_launch;
    $self->_connect_serial;
    $self->_connect_qmp;
    $self->qmp('change-vnc-password', { password => $opt{password} }) if defined $opt{password};
    my $vnc = $self->qmp('query-vnc');
    croak 'QEMU VNC server is not enabled' unless $vnc->{enabled};
    $self->{vnc_port} = $vnc->{service};
    return $self;
}

sub _launch ($self) {
    my ($opt, $tmp) = ($self->{opt}, $self->{tmp});
    my $display = free_tcp_port(from => 5900, to => 6899) - 5900;
    my $vnc = "127.0.0.1:$display,to=" . ($display + 100);
    $vnc .= ',password=on' if defined $opt->{password};
    $vnc .= $opt->{vnc_extra} // '';
    my @command = (
        'qemu-system-x86_64', -accel => 'tcg', -m => $opt->{memory} // 256,
        -kernel => "$self->{dir}/vmlinuz", -initrd => "$self->{dir}/initrd.gz",
        -append => 'vga=792 quiet loglevel=1', -display => 'none', '-no-reboot',
        -vnc => $vnc,
        -qmp => "unix:$tmp/qmp.sock,server=on,wait=off",
        -chardev => "socket,id=serial0,path=$tmp/serial.sock,server=on,wait=on,logfile=$tmp/serial.log",
        -serial => 'chardev:serial0',
        @{ $opt->{qemu_args} // [] },
    );
    $self->{command} = \@command;
    $self->{started} = time;
    $self->{pid} = spawn_group(\@command, log => $self->qemu_log_path);
}

sub _connect_serial ($self) {
    my $path = "$self->{tmp}/serial.sock";
    $self->{serial} = wait_until($self->{opt}{start_timeout} // 30, "QEMU serial socket $path", sub {
        $self->_check_alive;
        -S $path && IO::Socket::UNIX->new(Peer => $path, Type => SOCK_STREAM);
    });
    $self->{serial}->blocking(0);
}

sub _connect_qmp ($self) {
    my $path = "$self->{tmp}/qmp.sock";
    $self->{qmp} = wait_until($self->{opt}{start_timeout} // 30, "QEMU QMP socket $path", sub {
        $self->_check_alive;
        -S $path && IO::Socket::UNIX->new(Peer => $path, Type => SOCK_STREAM);
    });
    $self->{qmp}->blocking(0);
    my $greeting = $self->_qmp_message(30);
    croak 'unexpected QMP greeting: ' . $json->encode($greeting) unless $greeting->{QMP};
    $self->qmp('qmp_capabilities');
}

=head2 vnc_host, vnc_port, pid, qemu_log_path, serial_log_path, command

Where the VNC server listens (C<127.0.0.1> and the TCP port QEMU reports through QMP C<query-vnc>), QEMU's pid
(also its process group), the log files, and the QEMU command line (array ref).

=cut

sub vnc_host ($self) { return '127.0.0.1' }
sub vnc_port ($self) { return $self->{vnc_port} }
sub pid ($self) { return $self->{pid} }
sub qemu_log_path ($self) { return "$self->{tmp}/qemu.log" }
sub serial_log_path ($self) { return "$self->{tmp}/serial.log" }
sub command ($self) { return $self->{command} }

=head2 alive

True while the QEMU process has not exited (reaps it if it has): C<alive> from L<NativeVNC::Test::Util>.

=cut

sub _check_alive ($self) {
    return if $self->alive;
    croak sprintf "QEMU exited (wait status %s); its log ends with:\n%s", $self->{exit_status} // '?',
      file_tail($self->qemu_log_path);
}

=head2 wait_ready($timeout = 180)

Waits until the guest printed its ready marker on the serial port: the serial control shell is listening and
the console shell has taken tty1 (its prompt appears within a few milliseconds). Returns the seconds since
QEMU was started (also available later as C<boot_seconds>).

=cut

sub wait_ready ($self, $timeout = 180) {
    return $self->{boot_seconds} if $self->{ready};
    $self->_serial_wait(qr/(?:^|\n)\Q$READY_MARKER\E\n/, $timeout, 'guest ready marker on the serial port');
    $self->{serial_buffer} =~ s/\A.*?\Q$READY_MARKER\E\n//s;
    $self->{ready} = 1;
    return $self->{boot_seconds} = time - $self->{started};
}

sub boot_seconds ($self) { return $self->{boot_seconds} }

=head2 run($command, $timeout = 60)

Runs a shell command on the guest's serial control shell and returns its output (stdout and stderr together)
without the final newline. Dies when it does not finish within C<$timeout> seconds or exits non-zero. Each
command runs in a subshell (C<( eval '...' )>) with stdin F</dev/null>: no state (cd, variables) carries over,
and syntax errors cannot kill the control shell. Commands of 20 KB passed through the serial line intact.
Calls C<wait_ready> first if needed.

=head2 run_status($command, $timeout = 60)

Like C<run> but does not die on a non-zero exit: returns C<($output, $exit_status)>.

=cut

sub run ($self, $command, $timeout = 60) {
    my ($output, $status) = $self->run_status($command, $timeout);
    croak "guest command '$command' exited with status $status; output:\n$output" if $status;
    return $output;
}

sub run_status ($self, $command, $timeout = 60) {
    $self->wait_ready unless $self->{ready};
    my $id = sprintf '%d-%d-%08x', $$, ++$self->{sequence}, int(rand(0xffffffff));
    (my $quoted = $command) =~ s/'/'\\''/g;
    $self->_serial_send("echo NVB-$id; ( eval '$quoted' ) </dev/null 2>&1; printf '\\nNVE-%s:%d\\n' $id \$?\n");
    my $pattern = qr/(?:^|\n)NVB-\Q$id\E\n(.*?)\nNVE-\Q$id\E:(\d+)\n/s;
    $self->_serial_wait($pattern, $timeout, "guest command '$command'");
    $self->{serial_buffer} =~ s/\A.*?$pattern//s;
    my ($output, $status) = ($1, $2);
    $output =~ s/\n\z//;
    return ($output, $status);
}

sub _serial_send ($self, $data) {
    local $SIG{PIPE} = 'IGNORE';
    my $deadline = time + 10;
    my $select = IO::Select->new($self->{serial});
    while (length $data) {
        my $left = $deadline - time;
        croak 'writing to the guest serial port did not happen within 10s' if $left <= 0;
        next unless $select->can_write($left);
        my $wrote = syswrite $self->{serial}, $data;
        croak "writing to the guest serial port failed: $!" unless defined $wrote || $!{EAGAIN};
        substr($data, 0, $wrote // 0) = '';
    }
}

sub _serial_wait ($self, $pattern, $timeout, $what) {
    my $deadline = time + $timeout;
    my $select = IO::Select->new($self->{serial});
    until ($self->{serial_buffer} =~ $pattern) {
        $self->_check_alive;
        my $left = $deadline - time;
        croak "$what did not happen within ${timeout}s; serial output so far:\n"
          . substr($self->{serial_buffer}, -2000) if $left <= 0;
        next unless $select->can_read($left < 0.5 ? $left : 0.5);
        my $got = sysread $self->{serial}, $self->{serial_buffer}, 65536, length $self->{serial_buffer};
        croak "reading the guest serial port failed: $!" unless defined $got || $!{EAGAIN};
        if (defined $got && $got == 0) {
            reap($self->{pid}, 5) if $self->{pid};    # QEMU closes the port when it exits
            $self->_check_alive;
            croak "$what: the guest serial port closed";
        }
    }
}

=head2 qmp($command, \%arguments, $timeout = 30)

Executes a QMP command and returns the decoded C<return> value; dies with QEMU's error class and description.
Asynchronous events seen meanwhile are collected (see L</events>).

=head2 events

Returns and forgets the QMP events (hashrefs with C<event>, C<data>, C<timestamp>) collected so far.

=cut

sub qmp ($self, $command, $arguments = undef, $timeout = 30) {
    croak "QMP $command: QEMU is not running" unless $self->{qmp} && $self->alive;
    my $id = 'nv-' . ++$self->{sequence};
    my $request = { execute => $command, id => $id, ($arguments ? (arguments => $arguments) : ()) };
    my $data = $json->encode($request) . "\n";
    local $SIG{PIPE} = 'IGNORE';
    while (length $data) {
        my $wrote = syswrite $self->{qmp}, $data;
        croak "QMP $command: write failed: $!" unless defined $wrote || $!{EAGAIN};
        substr($data, 0, $wrote // 0) = '';
        IO::Select->new($self->{qmp})->can_write(1) if length $data;
    }
    my $deadline = time + $timeout;
    while (1) {
        my $message = $self->_qmp_message($deadline - time, "QMP $command");
        next unless ($message->{id} // '') eq $id;
        croak "QMP $command failed: $message->{error}{class}: $message->{error}{desc}" if $message->{error};
        return $message->{return};
    }
}

sub events ($self) {
    my @events = @{ $self->{events} };
    @{ $self->{events} } = ();
    return @events;
}

# Next non-event QMP message (events are queued).
sub _qmp_message ($self, $timeout, $what = 'QMP reply') {
    my $deadline = time + $timeout;
    my $select = IO::Select->new($self->{qmp});
    while (1) {
        while ($self->{qmp_buffer} =~ s/\A([^\n]*)\n//) {
            my $line = $1;
            next unless $line =~ /\S/;
            my $message = $json->decode($line);
            if ($message->{event}) { push @{ $self->{events} }, $message; next }
            return $message;
        }
        my $left = $deadline - time;
        croak "$what did not happen within ${timeout}s" if $left <= 0;
        next unless $select->can_read($left);
        my $got = sysread $self->{qmp}, $self->{qmp_buffer}, 65536, length $self->{qmp_buffer};
        croak "$what: QMP read failed: $!" unless defined $got || $!{EAGAIN};
        croak "$what: QMP connection closed" if defined $got && $got == 0;
    }
}

=head2 screendump(%opt)

What QEMU's VNC server shows, through QMP C<screendump> (a binary PPM, C<P6>, maxval 255): returns
C<{width, height, rgb}>, C<rgb> being packed R,G,B bytes, row-major, no padding (read by C<read_ppm> of
L<NativeVNC::Test::Image>). With C<< file => $path >> the PPM is kept there.

=cut

sub screendump ($self, %opt) {
    my $file = $opt{file} // sprintf '%s/screendump-%d.ppm', $self->{tmp}, ++$self->{sequence};
    $self->qmp('screendump', { filename => $file });
    my $image = read_ppm($file);
    unlink $file unless $opt{file};
    return $image;
}

=head2 wait_screen_stable($timeout = 30, $interval = 0.5)

Waits until two screendumps C<$interval> seconds apart are identical and returns the last one.

=cut

sub wait_screen_stable ($self, $timeout = 30, $interval = 0.5) {
    my $previous = $self->screendump;
    return wait_until($timeout, 'a stable guest screen', sub {
        sleep $interval;
        my $current = $self->screendump;
        my $same = $current->{rgb} eq $previous->{rgb};
        $previous = $current;
        return $same ? $current : undef;
    });
}

=head2 console_matches($vnc, $what, $timeout = 30)

Asks the VNC console C<$vnc> (a C<consoles::VNC> or C<consoles::NativeVNC> with a tinycv framebuffer) for full
updates until its framebuffer equals the guest's screendump (the guest may still be drawing), for at most
C<$timeout> seconds; returns the number of differing pixels at the end (-1 for another size), or
C<'no screen'>.

=cut

sub console_matches ($self, $vnc, $what, $timeout = 30) {
    my $file = "$self->{tmp}/console.ppm";
    my $diff = 'no screen';
    wait_until(
        $timeout, $what,
        sub {
            $vnc->send_update_request(0);
            my $deadline = time + 2;
            sleep 0.02 until $vnc->update_framebuffer || time > $deadline;
            return 0 unless $vnc->_framebuffer;
            $vnc->_framebuffer->write($file) or die "tinycv could not write $file";
            $diff = differing_pixels(read_ppm($file), $self->screendump);
            return $diff eq '0';
        },
        interval => 0.2
    );
    return $diff;
}

=head2 kill

SIGKILLs QEMU's process group at once and reaps it (for "server died mid-session" tests).

=head2 stop($timeout = 20)

Asks QEMU to quit through QMP, waits up to C<$timeout> seconds, then SIGKILLs. Idempotent; called by DESTROY.

=cut

sub kill ($self) {
    if ($self->{pid}) {
        signal_group($self->{pid}, 'KILL');
        $self->{exit_status} = reap($self->{pid}, 10);
        delete $self->{pid};
    }
    $self->_close;
}

sub stop ($self, $timeout = 20) {
    return $self->_close unless $self->{pid} && $$ == $self->{owner};
    eval { $self->qmp('quit', undef, 5) } if $self->alive;
    if ($self->{pid}) {
        my $status = reap($self->{pid}, $timeout);
        if (defined $status) {
            $self->{exit_status} = $status;
            delete $self->{pid};
        }
    }
    $self->kill;
}

sub _close ($self) {
    for my $socket (qw(serial qmp)) {
        close delete $self->{$socket} if $self->{$socket};
    }
}

sub DESTROY ($self) {
    return unless ($self->{owner} // 0) == $$;
    local ($@, $?, $!);
    eval { $self->stop };
}

1;
