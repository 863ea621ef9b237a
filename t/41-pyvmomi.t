#!/usr/bin/perl
# The webmks simulator against pyVmomi, VMware's own SDK: SmartConnect, a container view, AcquireTicket,
# FindByInventoryPath, a wrong password and Logout, as an ESXi host and as vCenter. The simulator's SOAP must
# satisfy the real SDK before our own client is tested against it. No VNC server is needed for SOAP.
use v5.36;
use Test::More;
use IPC::Open3;
use JSON::PP ();
use Symbol 'gensym';

use lib 't/lib';
use NativeVNC::Test::Util qw(repo_root);
use NativeVNC::Test::WebmksSim;

$SIG{ALRM} = sub { diag 'test did not finish within 120 s'; exit 1 };
alarm 120;

my $python = repo_root() . '/build/venv/bin/python';
my $script = repo_root() . '/t/pyvmomi/check_sim.py';
ok(-x $python, 'the pyVmomi virtualenv exists')
  or BAIL_OUT("$python missing: run tools/setup-pyvmomi (tools/run-tests does)");

# Runs check_sim.py; returns (exit status, stdout, stderr).
sub check_sim (@args) {
    my $pid = open3(my $in, my $out, my $err = gensym, $python, $script, @args);
    close $in;
    my $stdout = do { local $/; <$out> } // '';
    my $stderr = do { local $/; <$err> } // '';
    waitpid $pid, 0;
    return ($? >> 8, $stdout, $stderr);
}

for my $case (
    { flavour => 'esxi', path => 'ha-datacenter/vm/sut', moid => '1', api_type => 'HostAgent' },
    { flavour => 'vcenter', path => 'DC0/vm/sut', moid => 'vm-1001', api_type => 'VirtualCenter' },
) {
    subtest "pyVmomi against the $case->{flavour} flavour" => sub {
        my $sim = NativeVNC::Test::WebmksSim->start(
            vnc_host => '127.0.0.1', vnc_port => 1, password => 'se:cr@t',
            args => ['--flavour', $case->{flavour}, '--vm', 'sut', '--vm', 'other,power=off'],
        );
        my ($status, $stdout, $stderr) = check_sim($sim->host, $sim->port, 'root', 'se:cr@t', 'sut', $case->{path});
        is $status, 0, 'check_sim.py succeeds' or diag "stderr:\n$stderr\nsimulator log:\n" . `tail -40 ${\ $sim->log_path}`;
        my $r = eval { JSON::PP::decode_json($stdout) } // {};
        my $t = $r->{ticket} // {};
        is $r->{about}{apiType}, $case->{api_type}, 'about.apiType';
        is $r->{about}{apiVersion}, '8.0.2.0', 'about.apiVersion';
        is_deeply $r->{vm_names}, ['sut', 'other'], 'the container view shows every VM';
        is $r->{vm}{moid}, $case->{moid}, 'VM moid';
        is $r->{found_by_path}, $case->{moid}, 'FindByInventoryPath finds the same VM';
        is $r->{invalid_login}, 'Cannot complete login due to an incorrect user name or password.',
          'wrong password: InvalidLogin with vSphere\'s message';
        like $t->{ticket}, qr/^[0-9a-f]{32}$/, 'ticket';
        is $t->{url}, sprintf('wss://127.0.0.1:%d/ticket/%s', $sim->port, $t->{ticket} // ''),
          'ticket url points at the simulator';
        is $t->{host}, '127.0.0.1', 'ticket host';
        is $t->{port}, $sim->port, 'ticket port';
        is $t->{sslThumbprint}, $sim->sha1, 'sslThumbprint is the certificate\'s SHA-1';
        is_deeply $t->{certThumbprintList}, [{ thumbprint => $sim->sha256, hashAlgorithm => 'sha256' }],
          'certThumbprintList has the certificate\'s SHA-256';
        my $stats = $sim->stats;
        is $stats->{logins}, 1, 'one login';
        cmp_ok $stats->{failed_logins}, '>=', 1, 'the wrong password counted';
        is $stats->{logouts}, 1, 'Disconnect logged out';
        is $stats->{tickets_issued}, 1, 'one ticket issued';
        is $stats->{tickets_used}, 0, 'the ticket was not used';
        $sim->stop;
        ok !$sim->alive, 'the simulator stopped';
        unlike scalar(`cat ${\ $sim->log_path}`), qr/se:cr\@t/, 'the password is not logged';
    };
}

done_testing;
