#!/usr/bin/perl
# tools/vmware-site, the README's way to try os-autoinst's svirt flow by hand: the simulated site comes up in a
# private host, virsh reaches the ESXi host through libvirt's esx driver without a password prompt, the
# command's exit status comes back, and nothing of the site is left on the machine afterwards.
use v5.36;
use Test::More;
use IO::Socket::INET;
use IPC::Open3;
use Symbol 'gensym';

use lib 't/lib';
use NativeVNC::Test::Util qw(repo_root);

$SIG{ALRM} = sub { diag 'test did not finish within 120 s'; exit 1 };
alarm 120;

my $tool = repo_root() . '/tools/vmware-site';
my $inner = q{virsh -c 'esx://root@127.0.0.1/?no_verify=1' uri 2>/dev/null; }
  . q{virsh -c 'esx://root@127.0.0.1/?no_verify=1' version 2>/dev/null | grep -i 'hypervisor'; test -d /vmfs/volumes/datastore1; exit 7};
my $pid = open3(my $in, my $out, my $err = gensym, $tool, '--esxi-version', '6.5', '--', 'sh', '-c', $inner);
close $in;
my $stdout = do { local $/; <$out> } // '';
my $stderr = do { local $/; <$err> } // '';
waitpid $pid, 0;
is($? >> 8, 7, 'the command\'s exit status comes back');
like($stdout, qr{^esx://root\@127\.0\.0\.1:443/\?no_verify=1$}m, 'virsh connected to the simulated host without a prompt');
like($stdout, qr/hypervisor: ESX 6\.5\.0/i, '... which says it is ESXi 6.5');
like($stderr, qr/VMware ESXi 6\.5 \(webmks-sim\) on https:\/\/127\.0\.0\.1:443\/sdk/, 'the banner names the host');
like($stderr, qr/an svirt job's variables: BACKEND=svirt .*VIRSH_VMM_FAMILY=vmware/, '... and the job variables');
ok(!-e '/vmfs', 'no /vmfs on the machine afterwards');
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => 22, Timeout => 2), 'nothing listens on the machine\'s port 22');

done_testing;
