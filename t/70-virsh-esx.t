#!/usr/bin/perl
# Debian's virsh with libvirt's esx driver against webmks-sim as a standalone ESXi host (6.5, 7.0, 8.0), on
# loopback: define the domain os-autoinst's svirt console builds for VMware (VNC display with a password, a
# telnet serial port, an IDE disk and a CD-ROM in the datastore), check the .vmx libvirt uploaded, start it,
# and check that a real guest runs: its QMP socket, its serial console, its screen (ESXi 6.5's built-in VNC
# server with VNC authentication; webmks on 7.0 and 8.0 once the MKS is up, with the domain id as the moid),
# then destroy (QEMU gone) and undefine. A power-on whose .vmx names a missing file fails with vSphere's fault.
use v5.36;
use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NativeVNC::Test::Guest;
use NativeVNC::Test::Image qw(read_ppm differing_pixels);
use NativeVNC::Test::Util qw(repo_root free_tcp_port wait_until spawn_group stop_group reap rfb_probe slurp_or_die);
use NativeVNC::Test::WebmksSim;

$SIG{ALRM} = sub { diag 'test did not finish within 600 s'; exit 1 };
alarm 600;

my $PASSWORD = 'Esx:r00t/pw';
my $VNC_PASSWORD = 'vncpw-42';
my $NAME = 'openQA-SUT-1';
my $MKS_DELAY = 5;
my $nativevnc = repo_root() . '/target/release/nativevnc';
my $tmp = tempdir(CLEANUP => 1);

# The domain of os-autoinst's sshVirtsh for VIRSH_VMM_FAMILY=vmware (name, description, memory, vcpu, os, features,
# add_vnc, add_pty with a telnet tcp source), with the IDE disk and CD-ROM of its add_disk: libvirt puts the .vmx
# next to the first disk.
sub domain_xml ($vnc_port, $serial_port) {
    return <<~"XML";
    <domain type='vmware'>
      <name>$NAME</name>
      <description>openQA WebUI: no-webui-set (1): 0-no-scenario</description>
      <memory unit='MiB'>256</memory>
      <vcpu>1</vcpu>
      <os><type arch='x86_64'>hvm</type></os>
      <features><acpi/><apic/><pae/></features>
      <devices>
        <serial type='tcp'>
          <target port='0'/>
          <protocol type='telnet'/>
          <source mode='bind' host='0.0.0.0' service='$serial_port'/>
        </serial>
        <graphics type='vnc' port='$vnc_port' autoport='no' listen='0.0.0.0' sharePolicy='force-shared' passwd='$VNC_PASSWORD'>
          <listen type='address' address='0.0.0.0'/>
        </graphics>
        <disk type='file' device='disk'>
          <target dev='hda' bus='ide'/>
          <source file='[datastore1] openQA/${NAME}a.vmdk'/>
        </disk>
        <disk type='file' device='cdrom'>
          <target dev='hdc' bus='ide'/>
          <source file='[datastore1] openQA/installer.iso'/>
        </disk>
      </devices>
    </domain>
    XML
}

sub write_file ($path, $text) {
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
}

# virsh must succeed; returns its stdout.
sub virsh_ok ($sim, @args) {
    my ($status, $out, $err) = $sim->virsh(@args);
    is($status, 0, "virsh @args") or diag "stderr:\n$err\nsimulator log:\n" . `tail -30 ${\ $sim->log_path}`;
    return $out;
}

sub domstate ($sim) {
    my (undef, $out) = $sim->virsh('domstate', $NAME);
    return $out =~ s/\s+\z//r;
}

# The VNC server's screen (nativevnc's screenshot) equals QEMU's screendump, within a bounded wait (the guest may
# still be drawing). Returns the number of differing pixels at the end.
sub screen_matches ($sim, $moid, @nativevnc) {
    my $diff = 'no screenshot';
    wait_until(60, 'the console shows the guest\'s screen', sub {
        unlink "$tmp/shot.ppm";
        my $pid = spawn_group([$nativevnc, 'screenshot', @nativevnc, '--out', "$tmp/shot.ppm"], log => "$tmp/nativevnc.log");
        my $status = reap($pid, 30) // stop_group($pid);
        return 0 if $status;
        $sim->qmp($moid, 'screendump', { filename => "$tmp/dump.ppm" });
        $diff = differing_pixels(map { read_ppm($_) } "$tmp/shot.ppm", "$tmp/dump.ppm");
        return $diff eq '0';
    }, max_interval => 1);
    return $diff;
}

# Reads a TCP socket until $pattern matches what arrived; returns all of it.
sub read_until ($sock, $pattern, $timeout) {
    my ($buffer, $select, $deadline) = ('', IO::Select->new($sock), time + $timeout);
    while ($buffer !~ $pattern) {
        my $left = $deadline - time;
        die "no $pattern within ${timeout}s, got:\n$buffer" if $left <= 0;
        next unless $select->can_read($left);
        sysread($sock, $buffer, 4096, length $buffer) or die "connection closed, got:\n$buffer";
    }
    return $buffer;
}

sub port_closed ($port) {
    return !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 2);
}

for my $version ('6.5', '7.0', '8.0') {
    subtest "ESXi $version" => sub {
        my $datastore = tempdir(DIR => $tmp);
        mkdir "$datastore/openQA" or die $!;
        write_file("$datastore/openQA/${NAME}a.vmdk", "# Disk DescriptorFile\n");
        write_file("$datastore/openQA/installer.iso", "not really an ISO\n");
        my $sim = NativeVNC::Test::WebmksSim->start(password => $PASSWORD, esxi_version => $version,
            datastores => { datastore1 => $datastore }, guests => 1, mks_delay => $MKS_DELAY);
        my ($vnc_port, $serial_port) = (free_tcp_port(from => 5900, to => 5999), free_tcp_port(from => 20000, to => 29999));
        write_file("$tmp/domain.xml", domain_xml($vnc_port, $serial_port));

        like(virsh_ok($sim, 'define', "$tmp/domain.xml"), qr/Domain '$NAME' defined/, 'defined');
        my $vmx_file = "$datastore/openQA/$NAME.vmx";
        my $vmx = slurp_or_die($vmx_file);
        like($vmx, qr/^displayName = "$NAME"$/m, 'the .vmx libvirt uploaded is in the datastore: displayName');
        like($vmx, qr/^uuid\.bios = "[0-9a-f ]{23}-[0-9a-f ]{23}"$/m, 'uuid.bios');
        like($vmx, qr/^memsize = "256"$/m, 'memsize');
        like($vmx, qr/^RemoteDisplay\.vnc\.enabled = "true"\nRemoteDisplay\.vnc\.port = "$vnc_port"$/m, 'the VNC display');
        like($vmx, qr/^RemoteDisplay\.vnc\.password = "\Q$VNC_PASSWORD\E"$/m, 'with its password');
        like($vmx, qr{^serial0\.fileType = "network"\nserial0\.fileName = "telnet://0\.0\.0\.0:$serial_port"$}m,
            'the network serial port');
        like($vmx, qr{^ide0:0\.fileName = "/vmfs/volumes/[0-9a-f-]+/openQA/${NAME}a\.vmdk"$}m, 'the disk');
        like(virsh_ok($sim, 'list', '--all'), qr/^\s*-\s+$NAME\s+shut off\s*$/m, 'listed, shut off');

        # As define_and_start does over SSH: a boot delay appended to the .vmx (read again at power-on).
        open my $append, '>>', $vmx_file or die $!;
        print $append qq{bios.bootDelay = "10000"\nguestinfo.test = "appended"\n};
        close $append;

        # A file the .vmx names missing from the datastore: the disk, or (7.0) the CD-ROM image.
        my $missing = $version eq '7.0' ? 'installer.iso' : "${NAME}a.vmdk";
        rename "$datastore/openQA/$missing", "$datastore/openQA/$missing.away" or die $!;
        my ($status, undef, $err) = $sim->virsh('start', $NAME);
        isnt($status, 0, "a power-on with $missing missing fails");
        like($err, qr/Could not start domain: FileNotFound - File \[datastore1\] openQA\/\Q$missing\E was not found/,
            '... with vSphere\'s FileNotFound naming the file');
        is(domstate($sim), 'shut off', '... and the domain stays off');
        is_deeply($sim->guests, {}, '... with no guest');
        rename "$datastore/openQA/$missing.away", "$datastore/openQA/$missing" or die $!;

        like(virsh_ok($sim, 'start', $NAME), qr/Domain '$NAME' started/, 'started');
        like(slurp_or_die($sim->log_path), qr/powering on, its \.vmx read again: .*guestinfo keys \[guestinfo\.test\]/,
            'power-on read the .vmx again, with what was appended after define');
        my $started = time;
        my $serial = spawn_group(['socat', '-u', "TCP4:127.0.0.1:$serial_port,crnl", 'STDOUT'], log => "$tmp/serial-$version.log");
        is(domstate($sim), 'running', 'domstate: running');
        my ($id) = virsh_ok($sim, 'dumpxml', $NAME) =~ /<domain type='vmware' id='(\d+)'/;
        my $guests = $sim->guests;
        is_deeply([keys %$guests], [$id], "dumpxml's domain id $id is the moid of the running VM");
        my $qemu = $guests->{$id}{pid};
        is($guests->{$id}{qmp}, $sim->qmp_dir . "/$id.sock", 'the QMP socket is QMP_DIR/MOID.sock');
        is($sim->qmp($id, 'query-status')->{status}, 'running', 'and QEMU answers on it: running');
        ok(kill(0, $qemu), "QEMU runs (pid $qemu)");
        # The VM's webmks console: the domain id is what AcquireTicket takes.
        my $webmks = $sim->url(moid => $id, scheme => 'webmks+https');

        if ($version eq '6.5') {
            my $info = rfb_probe('127.0.0.1', $vnc_port, password => $VNC_PASSWORD);
            is_deeply($info->{security_types}, [2], "port $vnc_port speaks RFB with VNC authentication only");
            ok(!eval { rfb_probe('127.0.0.1', $vnc_port, password => 'wrong'); 1 }, 'a wrong password is refused');
            like($@, qr/authentication failed/, '... by the VNC server');
        }
        else {
            ok(port_closed($vnc_port), "port $vnc_port is closed: ESXi $version has no built-in VNC server");
            my $ticket_command = "$nativevnc ticket --ca-file @{[$sim->cert_file]} --ticket-attempts 0 --url '$webmks'";
            my $early = `$ticket_command 2>&1`;
            cmp_ok(time - $started, '<', $MKS_DELAY - 1, 'a ticket asked for right after power-on...');
            like($early, qr/SystemError .*'mks' is not available/, '... is refused: the MKS is not up yet');
            my $ticket = wait_until($MKS_DELAY + 10, 'a webmks ticket for the domain id', sub {
                my $out = `$ticket_command 2>/dev/null`;
                $? == 0 ? $out : undef;
            }, max_interval => 0.5);
            like($ticket, qr{\Awss://127\.0\.0\.1:@{[$sim->port]}/ticket/[0-9a-f]{32}\n\z}, 'once the MKS is up, a ticket');
            cmp_ok(time - $started, '>=', $MKS_DELAY - 0.5, '... no earlier than the MKS delay after power-on');
        }

        my $log = "$tmp/serial-$version.log";
        ok(wait_until(180, 'the guest\'s ready marker on the serial port',
            sub { -e $log && slurp_or_die($log) =~ /\Q$NativeVNC::Test::Guest::READY_MARKER\E/ }),
            'the serial port carries the guest\'s boot output (socat, as os-autoinst reads it)');
        stop_group($serial);
        my $sock = wait_until(10, 'the serial port free again',
            sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $serial_port, Proto => 'tcp') });
        syswrite $sock, "echo serial-\$((6*7))\n";
        like(read_until($sock, qr/^serial-42\r?$/m, 30), qr/^serial-42\r?$/m, 'and runs commands sent to it');
        close $sock;

        my @console = $version eq '6.5'
          ? ('--url', "vnc://:$VNC_PASSWORD\@127.0.0.1:$vnc_port")
          : ('--ca-file', $sim->cert_file, '--url', $webmks);
        is(screen_matches($sim, $id, @console), 0,
            $version eq '6.5' ? 'the built-in VNC server shows the guest\'s screen' : 'webmks shows the guest\'s screen');

        if ($version eq '8.0') {
            $sim->stop;
            ok(wait_until(10, 'QEMU gone', sub { !kill 0, $qemu }), 'the simulator\'s exit stops the guest');
            ok(!-e $guests->{$id}{qmp}, '... and removes its QMP socket');
            return;
        }
        like(virsh_ok($sim, 'destroy', $NAME), qr/Domain '$NAME' destroyed/, 'destroyed');
        is(domstate($sim), 'shut off', 'domstate: shut off');
        ok(wait_until(10, 'QEMU gone', sub { !kill 0, $qemu }), 'QEMU is gone');
        ok(!-e $guests->{$id}{qmp}, 'so is its QMP socket');
        is_deeply($sim->guests, {}, 'no guest runs');
        like(virsh_ok($sim, 'undefine', $NAME), qr/Domain '$NAME' has been undefined/, 'undefined');
        unlike(virsh_ok($sim, 'list', '--all'), qr/\Q$NAME\E/, 'gone from list --all');
        ok(-e $vmx_file, 'undefine keeps the files, as UnregisterVM does');
        # Every session logged out but that of the successful `nativevnc ticket` (webmks only): it keeps its session
        # for the ticket it printed.
        my $stats = $sim->stats;
        my $kept = $version eq '6.5' ? 0 : 1;
        is($stats->{logouts}, $stats->{logins} - $kept, "every other session logged out ($stats->{logins} logins)");
        unlike(slurp_or_die($sim->log_path), qr/\Q$PASSWORD\E|\Q$VNC_PASSWORD\E/, 'no password in the simulator\'s log');
        $sim->stop;
    };
}

done_testing;
