#!/usr/bin/perl
# The Debian package. tools/build-deb builds libnativevnc-perl from the tree (the crates vendored, the build
# offline; cargo's directory kept in target/build-deb between runs, so that only NativeVNC's own crates are
# compiled again). The package is then installed, used and removed in a private host
# (t/lib/NativeVNC/Test/PrivateHost.pm: the machine's root file system under a private overlay, in namespaces
# of its own), never on the machine: dpkg -i; nativevnc, the modules and the manual pages work with no PERL5LIB;
# a real isotovideo job (t/distri, the qemu backend) with VNC_CLIENT=native passes with the environment of the
# package's example systemd drop-in and nothing else; dpkg -r takes it all away. Afterwards the machine is
# checked: the package is not installed there. Needs root, dpkg-dev, debhelper, os-autoinst and the test guest.
use v5.36;
use Test::More;
use Config;
use File::Temp qw(tempdir);
use JSON::PP ();
use Time::HiRes qw(time);

use lib 't/lib';
use NativeVNC::Test::PrivateHost;
use NativeVNC::Test::Util qw(repo_root file_tail slurp slurp_or_die);

my $PACKAGE = 'libnativevnc-perl';
my $BUILD_VAR = 'NATIVEVNC_T06_BUILD';
my $DOC = "/usr/share/doc/$PACKAGE";

# Whether the package is installed, and where the program is: what the machine must still say afterwards.
sub host_state () {
    my $status = `dpkg-query -W -f='\${Status}' $PACKAGE 2>/dev/null`;
    return join ', ', "$PACKAGE: " . ($status || 'unknown to dpkg'),
      '/usr/bin/nativevnc: ' . (-e '/usr/bin/nativevnc' ? 'present' : 'absent');
}

# --- On the machine: build the package (no TAP here: the private host's run reports it), then go inside ---

if (!NativeVNC::Test::PrivateHost::inside()) {
    my $root = repo_root();
    my $out = tempdir('nativevnc-t06-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $started = time;
    system("cd '$root' && tools/build-deb --cache target/build-deb '$out/deb' >'$out/build.log' 2>&1");
    $ENV{$BUILD_VAR} = JSON::PP::encode_json(
        { status => $? >> 8, log => "$out/build.log", dir => "$out/deb", seconds => time - $started });
    my $before = host_state();
    NativeVNC::Test::PrivateHost::enter(timeout => 900, after => sub ($code) {
        my $after = host_state();
        print STDERR "# the machine after the private host: $after\n";
        return $code if $after eq $before;
        print STDERR "# host check failed: before the test it was $before\n";
        return $code || 1;
    });
}

# --- Inside the private host ---

$SIG{ALRM} = sub { diag 'test did not finish within 600 s'; exit 1 };
alarm 600;

delete @ENV{qw(PERL5LIB PERL5OPT)};
$ENV{DEBIAN_FRONTEND} = 'noninteractive';
my $build = JSON::PP::decode_json($ENV{$BUILD_VAR} // die "$BUILD_VAR not set: run the test itself\n");
my ($version) = slurp_or_die(repo_root() . '/debian/changelog') =~ /^\Q$PACKAGE\E \(([^)]+)\)/;
my ($upstream) = $version =~ /^(.+)-[^-]+$/;
my $vendorarch = $Config{vendorarch};
my $tmp = tempdir('nativevnc-t06-inside-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# Runs @command; returns the exit status and its output (standard output and error together).
sub run (@command) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null' or die "/dev/null: $!";
        open STDOUT, '>', "$tmp/out" or die "$tmp/out: $!";
        open STDERR, '>&', \*STDOUT or die "stderr: $!";
        exec { $command[0] } @command or die "exec $command[0]: $!";
    }
    waitpid $pid, 0;
    return ($? >> 8, slurp("$tmp/out") // '');
}

is($build->{status}, 0, 'tools/build-deb built the package') or BAIL_OUT(file_tail($build->{log}, 6000));
note sprintf 'tools/build-deb: %.0f s', $build->{seconds};
my ($deb) = glob "$build->{dir}/${PACKAGE}_${version}_*.deb";
ok($deb && -f $deb, "the package: $deb") or BAIL_OUT('no .deb');
note sprintf '%s: %d bytes', $deb =~ s{.*/}{}r, -s $deb;

subtest 'what the package holds' => sub {
    my ($status, $fields) = run('dpkg-deb', '-f', $deb, qw(Package Version Depends Recommends));
    like($fields, qr/^Version: \Q$version\E$/m, "version $version");
    like($fields, qr/^Depends: .*perlapi-[\d.]+/m, 'depends on the perl it was built for (perlapi)');
    like($fields, qr/^Depends: .*libc6/m, 'and on the C library (shlibs)');
    like($fields, qr/^Recommends: os-autoinst$/m, 'recommends os-autoinst');
    my ($list_status, $list) = run('dpkg-deb', '-c', $deb);
    my %files = map { ((split ' ', $_)[5] =~ s{^\.}{}r => 1) } split /\n/, $list;
    ok($files{$_}, $_) for "$vendorarch/NativeVNC.pm", "$vendorarch/consoles/NativeVNC.pm",
      "$vendorarch/NativeVNC/Hook.pm", "$vendorarch/auto/NativeVNC/NativeVNC.so", '/usr/bin/nativevnc',
      '/usr/share/man/man3/consoles::NativeVNC.3pm.gz', '/usr/share/man/man1/nativevnc.1p.gz',
      "$DOC/examples/nativevnc.conf", "$DOC/copyright", "$DOC/rust-crates.txt.gz";
    is_deeply([grep { /webmks-sim|\.packlist|perllocal|perl::lib/ } sort keys %files], [],
        'no test tool, no .packlist or perllocal.pod, no man page named after a source path');
};

subtest 'dpkg -i, in the private host' => sub {
    my ($status, $out) = run('dpkg', '-i', $deb);
    is($status, 0, 'dpkg -i') or diag $out;
    ($status, $out) = run('dpkg-query', '-W', '-f=${Status} ${Version}', $PACKAGE);
    is($out, "install ok installed $version", 'installed');
};

my $dropin = slurp("$DOC/examples/nativevnc.conf") // '';
subtest 'no PERL5LIB: the program, the modules, the manual pages, the drop-in' => sub {
    my ($status, $out) = run('nativevnc', '--version');
    is($out, "nativevnc $upstream\n", "nativevnc --version: nativevnc $upstream");
    ($status, $out) = run($^X, '-MNativeVNC', '-Mconsoles::NativeVNC', '-MNativeVNC::Hook', '-e',
        'print join " ", $NativeVNC::VERSION, $INC{"NativeVNC.pm"}, NativeVNC::key_chord("ret")');
    is($out, "v$upstream $vendorarch/NativeVNC.pm 65293", 'perl -MNativeVNC: from Perl\'s vendor directory, working');
    ($status, $out) = run('man', '-w', 'consoles::NativeVNC', 'nativevnc');
    is($out, "/usr/share/man/man3/consoles::NativeVNC.3pm.gz\n/usr/share/man/man1/nativevnc.1p.gz\n",
        'man -w consoles::NativeVNC, man -w nativevnc');
    ($status, $out) = run('perldoc', '-U', '-T', '-t', 'consoles::NativeVNC');
    like($out, qr/consoles::NativeVNC - /, 'perldoc consoles::NativeVNC');
    like($dropin, qr/^\[Service\]\nEnvironment=PERL5OPT=-MNativeVNC::Hook$/m,
        "$DOC/examples/nativevnc.conf: [Service] Environment=PERL5OPT=-MNativeVNC::Hook");
};

subtest 'isotovideo, VNC_CLIENT=native, the drop-in\'s environment only' => sub {
    require NativeVNC::Test::Isotovideo;
    my %environment = $dropin =~ /^Environment=(\w+)=(.*)$/mg;
    is_deeply([sort keys %environment], ['PERL5OPT'], 'the drop-in sets PERL5OPT');
    local @ENV{ keys %environment } = values %environment;
    my $started = time;
    my $run = NativeVNC::Test::Isotovideo->start({ installed => 1 }, VNC_CLIENT => 'native');
    my $finished = $run->finish(300) or $run->stop;
    note sprintf 'isotovideo: %.0f s', time - $started;
    ok($finished, 'isotovideo finished within 300 s');
    is($run->result, 'ok', 'the job passed') or diag substr($run->log, -4000);
    like($run->log, qr/VNC_CLIENT=native: consoles::NativeVNC serves the VNC console for localhost:59\d\d/,
        'the log says the native client served the console');
};

subtest 'dpkg -r' => sub {
    my ($status, $out) = run('dpkg', '-r', $PACKAGE);
    is($status, 0, 'dpkg -r') or diag $out;
    ($status, $out) = run('dpkg-query', '-W', '-f=${Status}', $PACKAGE);
    unlike($out, qr/ installed$/, 'not installed: ' . ($out =~ s/\s+\z//r));
    ok(!-e $_, "$_ is gone") for '/usr/bin/nativevnc', "$vendorarch/NativeVNC.pm", "$vendorarch/auto/NativeVNC",
      '/usr/share/man/man3/consoles::NativeVNC.3pm.gz', "$DOC/examples/nativevnc.conf";
};

done_testing;
