#!/usr/bin/perl
# NativeVNC::Hook, loaded through PERL5OPT as the README's worker set-up does, with os-autoinst's own
# consoles::vnc_base from its Debian package against Xvnc: VNC_CLIENT=native gives consoles::NativeVNC and says
# so in the log, anything else gives os-autoinst's consoles::VNC and the log does not name the native client.
# The console is created in a forked child, as in isotovideo's backend.
use v5.36;
use Test::More;
use IPC::Open3;
use Symbol 'gensym';

use lib 't/lib';
use NativeVNC::Test::Util qw(repo_root);
use NativeVNC::Test::Xvnc;

$SIG{ALRM} = sub { diag 'test did not finish within 120 s'; exit 1 };
alarm 120;

my $root = repo_root();
my $xvnc = NativeVNC::Test::Xvnc->start;

sub run_hooked ($client) {
    local $ENV{PERL5OPT} = '-MNativeVNC::Hook';
    local $ENV{PERL5LIB} = join ':', "$root/blib/lib", "$root/blib/arch", $ENV{PERL5LIB} // ();
    my $pid = open3(my $in, my $out, my $err = gensym, $^X, "$root/t/bin/hooked-console", $client, $xvnc->host,
        $xvnc->port);
    close $in;
    my $stdout = do { local $/; <$out> } // '';
    my $stderr = do { local $/; <$err> } // '';
    waitpid $pid, 0;
    return ($? >> 8, $stdout, $stderr);
}

for my $case (['native', 'consoles::NativeVNC'], ['', 'consoles::VNC'], ['stock', 'consoles::VNC']) {
    my ($client, $class) = @$case;
    subtest "VNC_CLIENT='$client'" => sub {
        my ($status, $out, $log) = run_hooked($client);
        is($status, 0, 'the backend child connected and got a screen') or diag $log;
        is($out, "$class 1024x768\n", "the console is a $class");
        if ($class eq 'consoles::NativeVNC') {
            like($log, qr/VNC_CLIENT=native: consoles::NativeVNC serves the VNC console for 127\.0\.0\.1:\d+/,
                'the log names the native client');
        }
        else {
            unlike($log, qr/NativeVNC/, 'nothing in the log names the native client');
        }
    };
}

done_testing;
