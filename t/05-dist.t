#!/usr/bin/perl
# The release: one version everywhere (the Cargo workspace's, v-prefixed in Perl), a MANIFEST that lists
# exactly the tree's sources (make distcheck), and a tarball from make dist that builds and installs on its own:
# unpacked in a temporary directory, `perl Makefile.PL INSTALL_BASE=...`, make and make install put the
# modules, the nativevnc program and the manual pages (consoles::NativeVNC.3pm, nativevnc.1p) under a
# temporary prefix, and they work from there with nothing of the tree in reach.
#
# The tree is only read: make dist runs in a copy of the files MANIFEST lists (what make dist itself copies).
# cargo builds in target/dist-test, kept between runs so that the crates from crates.io are compiled once (a
# first run starts from a copy of the tree's own build); the tarball's own crates are compiled every time
# (unpacked with new timestamps), as the test checks.
use v5.36;
use Test::More;
use Config;
use ExtUtils::Manifest qw(maniread);
use File::Path qw(make_path);
use ExtUtils::MakeMaker ();
use File::Find qw(find);
use File::Temp qw(tempdir);
use JSON::PP ();
use Time::HiRes qw(time);

use lib 't/lib';
use NativeVNC::Test::Util qw(repo_root file_tail slurp_or_die);

$SIG{ALRM} = sub { diag 'test did not finish within 600 s'; exit 1 };
alarm 600;

my $root = repo_root();
chdir $root or die "chdir $root: $!";
my $tmp = tempdir('nativevnc-t05-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{NATIVEVNC_KEEP_TMP});
my $packages = '-p nativevnc -p nativevnc-cli';

# Runs @command in $dir with the environment of a shell outside the tree (no PERL5LIB pointing into blib, no
# make of ours around it) plus %$env; its output goes to $tmp/$log. Returns the exit status and the output.
sub run ($dir, $log, $env, @command) {
    my $started = time;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        delete @ENV{qw(PERL5LIB PERL5OPT PERL_MM_OPT PERL_MB_OPT MAKEFLAGS MAKELEVEL MFLAGS CARGO_TARGET_DIR
              CARGO_BUILD_BUILD_DIR)};
        @ENV{ keys %$env } = values %$env;
        chdir $dir or die "chdir $dir: $!";
        open STDIN, '<', '/dev/null' or die "/dev/null: $!";
        open STDOUT, '>', "$tmp/$log" or die "$tmp/$log: $!";
        open STDERR, '>&', \*STDOUT or die "stderr: $!";
        exec { $command[0] } @command or die "exec $command[0]: $!";
    }
    waitpid $pid, 0;
    my $status = $? >> 8;
    my $what = "@command";
    note sprintf '%s: %.1f s', length $what > 80 ? substr($what, 0, 77) . '...' : $what, time - $started;
    return ($status, slurp_or_die("$tmp/$log"));
}

sub run_ok ($dir, $log, $env, $what, @command) {
    my ($status, $out) = run($dir, $log, $env, @command);
    is($status, 0, $what) or diag file_tail("$tmp/$log", 4000);
    return $out;
}

# --- One version ---

my ($workspace) = slurp_or_die('Cargo.toml') =~ /^\[workspace\.package\]\n(.*?)(?:^\[|\z)/ms;
my ($version) = ($workspace // '') =~ /^version\s*=\s*"([^"]+)"/m;
like($version, qr/^\d+\.\d+\.\d+$/, "the Cargo workspace's version: $version");

subtest "every version is $version" => sub {
    my @modules;
    find(sub { push @modules, $File::Find::name if /\.pm\z/ }, 'perl/lib');
    ok(@modules >= 7, scalar(@modules) . ' modules');
    for my $module (sort @modules) {
        is(MM->parse_version($module), "v$version", "$module: \$VERSION");
    }
    my ($changes) = slurp_or_die('Changes') =~ /^(\S+)\s+\d{4}-\d\d-\d\d/m;
    is($changes, $version, 'Changes: the newest entry');
    my ($debian) = slurp_or_die('debian/changelog') =~ /^libnativevnc-perl \(([^)]+)\)/;
    like($debian, qr/^\Q$version\E-\d+$/, "debian/changelog: $debian");
    is(scalar `blib/script/nativevnc --version`, "nativevnc $version\n", 'nativevnc --version (the build in blib)');
};

# --- MANIFEST ---

subtest 'make distcheck: MANIFEST lists the tree\'s files, MANIFEST.SKIP the rest' => sub {
    my $out = run_ok($root, 'distcheck.log', {}, 'make distcheck', 'make', 'distcheck');
    my @problems = grep { /^(?:Not in MANIFEST|No such file):/ } split /\n/, $out;
    is_deeply(\@problems, [], 'nothing missing, nothing extra') or diag join "\n", @problems;
};
my $manifest = maniread("$root/MANIFEST");
ok(exists $manifest->{$_}, "MANIFEST lists $_")
  for qw(Cargo.toml Cargo.lock LICENSE Changes README.md Makefile.PL MANIFEST.SKIP debian/control debian/rules
  tools/build-deb tools/nativevnc-pod xs/typemap perl/lib/consoles/NativeVNC.pm rust/nativevnc/src/lib.rs);

# --- make dist ---

my $copy = "$tmp/copy";
mkdir $copy or die "$copy: $!";
open my $tar, '|-', "tar -C '$root' --null --files-from=- -cf - | tar -C '$copy' -xf -" or die "tar: $!";
print {$tar} map { "$_\0" } sort keys %$manifest;
close $tar or die "copying the files MANIFEST lists failed\n";
run_ok($copy, 'dist-configure.log', {}, 'perl Makefile.PL (for make dist)', $^X, 'Makefile.PL');
run_ok($copy, 'dist.log', {}, 'make dist', 'make', 'dist');
my $distname = "NativeVNC-$version";
my $tarball = "$copy/$distname.tar.gz";
ok(-f $tarball, "$distname.tar.gz") or BAIL_OUT('no tarball');
note sprintf '%s: %d bytes', "$distname.tar.gz", -s $tarball;

my @listed = grep { !m{/\z} } split /\n/, `tar -tzf $tarball`;
my %want = map { ("$distname/$_" => 1) } keys %$manifest, 'META.json', 'META.yml';
is_deeply([sort @listed], [sort keys %want], 'the tarball holds what MANIFEST lists, and META.json and META.yml');
my $meta = JSON::PP::decode_json(scalar `tar -xzOf $tarball $distname/META.json`);
is($meta->{version}, "v$version", "META.json: version v$version");
is_deeply($meta->{license}, ['gpl_2'], 'META.json: licence GPL 2 (LICENSE: or later)');
like(scalar `tar -xzOf $tarball $distname/LICENSE`,
    qr/either version 2 of the License, or\s+\(at your\s+option\)\s+any\s+later/, 'LICENSE: GPL-2.0-or-later');

# --- Built and installed from the tarball ---

my $unpacked = "$tmp/unpacked";
my $prefix = "$tmp/prefix";
mkdir $unpacked or die "$unpacked: $!";
# New timestamps (-m): the tarball's crates are compiled, whatever target/dist-test holds from earlier runs.
run_ok($unpacked, 'unpack.log', {}, 'unpacked', 'tar', '-xzmf', $tarball);
my $build = "$unpacked/$distname";
my %cargo = (CARGO_TARGET_DIR => "$root/target/dist-test");
# cargo knows a crate from crates.io by its source and settings, not by the workspace that uses it: the tree's
# build of them serves the tarball's too. (Sharing target/ itself would not do: the tarball's workspace crates
# would overwrite the tree's.)
if (!-d "$cargo{CARGO_TARGET_DIR}/release" && -d "$root/target/release/deps") {
    make_path("$cargo{CARGO_TARGET_DIR}/release");
    run_ok($root, 'seed.log', {}, 'target/dist-test starts from the tree\'s build', 'cp', '-a',
        (map { "target/release/$_" } qw(deps build .fingerprint)), "$cargo{CARGO_TARGET_DIR}/release/");
}
run_ok($build, 'configure.log', \%cargo, 'perl Makefile.PL INSTALL_BASE=...', $^X, 'Makefile.PL',
    "INSTALL_BASE=$prefix");
my $make = run_ok($build, 'make.log', \%cargo, 'make', 'make', "CARGO_PACKAGES=$packages");
like($make, qr/Compiling nativevnc v\Q$version\E \(\Q$build\E\/rust\/nativevnc\)/,
    'cargo compiled the tarball\'s Rust core');
like($make, qr/Compiling nativevnc-cli v\Q$version\E \(\Q$build\E\/rust\/cli\)/, 'and its nativevnc program');
run_ok($build, 'install.log', \%cargo, 'make install', 'make', 'install', "CARGO_PACKAGES=$packages");

my $lib = "$prefix/lib/perl5";
my $arch = "$lib/$Config{archname}";
subtest 'installed under the prefix' => sub {
    ok(-f "$arch/$_", "$_ (architecture-dependent: the module has XS)")
      for qw(NativeVNC.pm consoles/NativeVNC.pm NativeVNC/Hook.pm auto/NativeVNC/NativeVNC.so);
    ok(-x "$prefix/bin/nativevnc", 'bin/nativevnc');
    ok(!-e "$prefix/bin/webmks-sim", 'no webmks-sim (a test tool)');
    ok(-f "$prefix/man/man3/$_.3pm", "man3/$_.3pm") for qw(consoles::NativeVNC NativeVNC NativeVNC::Hook);
    ok(-f "$prefix/man/man1/nativevnc.$Config{man1ext}", "man1/nativevnc.$Config{man1ext}");
    is_deeply([grep { /perl::lib/ } glob "$prefix/man/man3/*"], [], 'no man page named after a source path');
    note sprintf 'NativeVNC.so %d bytes, nativevnc %d bytes', -s "$arch/auto/NativeVNC/NativeVNC.so",
      -s "$prefix/bin/nativevnc";
};

subtest 'working from there, nothing of the tree in reach' => sub {
    my ($status, $out) = run($tmp, 'load.log', {}, $^X, "-I$lib", '-MNativeVNC', '-Mconsoles::NativeVNC', '-e',
        'print join "\n", $NativeVNC::VERSION, $INC{"NativeVNC.pm"}, (grep { /NativeVNC\.so/ }'
          . ' @DynaLoader::dl_shared_objects), join(",", NativeVNC::key_chord("ctrl-alt-f2")), ""');
    is($status, 0, 'perl -MNativeVNC -Mconsoles::NativeVNC loads') or diag $out;
    my ($loaded_version, $pm, $so, $chord) = split /\n/, $out;
    is($loaded_version, "v$version", "\$NativeVNC::VERSION is v$version");
    is($pm, "$arch/NativeVNC.pm", 'NativeVNC.pm from the prefix');
    is($so, "$arch/auto/NativeVNC/NativeVNC.so", 'and the XS module');
    is($chord, join(',', 0xffe3, 0xffe9, 0xffbf), 'which works: key_chord("ctrl-alt-f2")');

    ($status, $out) = run($tmp, 'version.log', {}, "$prefix/bin/nativevnc", '--version');
    is($out, "nativevnc $version\n", "bin/nativevnc --version: nativevnc $version");

    ($status, $out) = run($tmp, 'man.log', {}, 'man', '-M', "$prefix/man", '-w', 'consoles::NativeVNC', 'nativevnc');
    is($out, "$prefix/man/man3/consoles::NativeVNC.3pm\n$prefix/man/man1/nativevnc.$Config{man1ext}\n",
        'man -M PREFIX/man finds consoles::NativeVNC and nativevnc');
    ($status, $out) = run($tmp, 'man-page.log', { MANWIDTH => 120 }, 'man', '-M', "$prefix/man", 'nativevnc');
    like($out, qr/nativevnc - Screenshots, typing and keys over VNC/, 'nativevnc(1): NAME from --help');
    like($out, qr/^\s+nativevnc screenshot \[OPTIONS\] /m, 'SYNOPSIS from the commands\' usage');
    like($out, qr/--ticket-hosts/, 'the commands\' options');

    ($status, $out) = run($tmp, 'perldoc.log', { PERL5LIB => $lib }, 'perldoc', '-U', '-T', '-t',
        'consoles::NativeVNC');
    like($out, qr/consoles::NativeVNC - /, 'perldoc consoles::NativeVNC');
};

ok(!glob("$root/NativeVNC-*"), 'nothing left in the tree: no NativeVNC-* directory or tarball');

done_testing;
