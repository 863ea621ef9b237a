package NativeVNC::Test::Svirt;

use v5.36;
use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);

use NativeVNC::Test::Isotovideo;
use NativeVNC::Test::PrivateHost;
use NativeVNC::Test::Util qw(repo_root free_tcp_port);
use NativeVNC::Test::WebmksSim;

=head1 NAME

NativeVNC::Test::Svirt - a simulated VMware site for isotovideo jobs of os-autoinst's svirt backend

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::PrivateHost;
  BEGIN { NativeVNC::Test::PrivateHost::enter(timeout => 1500) }
  use NativeVNC::Test::Svirt;

  my $site = NativeVNC::Test::Svirt->new;             # sshd on 127.0.0.1:22, root's password, /vmfs
  my $host = $site->esxi_host('7.0');                 # webmks-sim as ESXi 7.0 on 127.0.0.1:443
  my $run = $site->job($host, VNC_CLIENT => 'native', VMWARE_VNC_OVER_WS => 1);
  say $run->result;                                   # see NativeVNC::Test::Isotovideo

=head1 DESCRIPTION

Only inside a private host (L<NativeVNC::Test::PrivateHost>): ports 22 and 443, root's password and
F</vmfs> belong to it. One address, 127.0.0.1, plays the libvirt host (C<VIRSH_HOSTNAME>: OpenSSH, where
os-autoinst runs C<virsh>, C<socat> and writes the domain XML to F</var/lib/libvirt/images>), the ESXi host
(C<VMWARE_HOST>: the same OpenSSH for os-autoinst's edits of the .vmx under F</vmfs/volumes/datastore1>, and
F<webmks-sim> on port 443 with that directory as its datastore C<datastore1>) and C<VIRSH_GUEST> (where the
VM's console is), as in many openQA set-ups.

C<new> starts OpenSSH with root's password C<root_password> (both C<VIRSH_PASSWORD> and C<VMWARE_PASSWORD>)
and adds F</usr/local/bin/xterm-console>: the svirt console runs its SSH session in that program, which
openSUSE ships with os-autoinst and Debian does not (a plain C<xterm> does the job).

C<esxi_host($version, @args)> empties the datastore and starts F<webmks-sim> as a standalone ESXi host of that
version (6.5, 6.7, 7.0, 8.0) on 127.0.0.1:443, booting the busybox guest of F<tools/build-guest> for every VM
powered on; C<@args> go to its command line.

C<job($host, %vars)> runs the svirt job of F<t/distri> with real C<isotovideo> against it (the hosts, the
passwords, a free C<VMWARE_SERIAL_PORT>, C<WEBMKS_SIM_CONTROL> for test modules that make the host misbehave,
plus C<%vars>) and returns the finished L<NativeVNC::Test::Isotovideo> run. C<start_job> returns it running.

C<root_password> and C<vnc_password> (the job's C<PASSWORD>, which os-autoinst gives the VM's VNC display)
are fixed values tests can look for in logs.

=cut

my $DATASTORE = '/vmfs/volumes/datastore1';

sub new ($class) {
    die "NativeVNC::Test::Svirt only works inside a private host\n" unless NativeVNC::Test::PrivateHost::inside();
    my $self = bless {root_password => 'Esx:r00t/pw', vnc_password => 'vncpw-42'}, $class;
    $self->{sshd} = NativeVNC::Test::PrivateHost::start_sshd(root_password => $self->{root_password});
    NativeVNC::Test::PrivateHost::write_file('/usr/local/bin/xterm-console', qq{#!/bin/sh\nexec xterm "\$@"\n}, 0755);
    make_path($DATASTORE, '/var/lib/libvirt/images');
    return $self;
}

sub root_password ($self) { $self->{root_password} }
sub vnc_password ($self) { $self->{vnc_password} }

sub esxi_host ($self, $version, @args) {
    remove_tree($DATASTORE, {keep_root => 1});
    my $guest = repo_root() . '/build/guest';
    my $qmp = tempdir('nativevnc-qmp-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    return NativeVNC::Test::WebmksSim->start(
        password => $self->{root_password},
        port => 443,
        args => [
            '--esxi-version' => $version,
            '--datastore' => "datastore1=$DATASTORE",
            '--guest-kernel' => "$guest/vmlinuz",
            '--guest-initrd' => "$guest/initrd.gz",
            '--qmp-dir' => $qmp,
            @args,
        ]);
}

sub start_job ($self, $host, %vars) {
    return NativeVNC::Test::Isotovideo->start(
        BACKEND => 'svirt',
        VIRSH_HOSTNAME => '127.0.0.1',
        VIRSH_PASSWORD => $self->{root_password},
        VIRSH_GUEST => '127.0.0.1',
        VMWARE_HOST => '127.0.0.1',
        VMWARE_PASSWORD => $self->{root_password},
        VMWARE_SERIAL_PORT => free_tcp_port(from => 20000, to => 29999),
        PASSWORD => $self->{vnc_password},
        WEBMKS_SIM_CONTROL => sprintf('https://127.0.0.1:%d/_sim/', $host->port),
        %vars);
}

sub job ($self, $host, %vars) {
    my $run = $self->start_job($host, %vars);
    $run->finish(400) or $run->stop;
    return $run;
}

1;
