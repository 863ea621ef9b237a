package NativeVNC::Test::Isotovideo;

use v5.36;
use strict;
use warnings;

use File::Temp qw(tempdir);
use JSON::PP ();
use Time::HiRes qw(time sleep);

use NativeVNC::Test::Util qw(
  repo_root free_tcp_port spawn_group reap stop_group signal_group group_pids file_tail slurp
);

my $json = JSON::PP->new->canonical->pretty;

=head1 NAME

NativeVNC::Test::Isotovideo - real isotovideo runs of the test distribution in F<t/distri> with NativeVNC::Hook

=head1 SYNOPSIS

  use lib 't/lib';
  use NativeVNC::Test::Isotovideo;

  my $run = NativeVNC::Test::Isotovideo->start(VNC_CLIENT => 'native');
  $run->finish(300) or die 'isotovideo did not finish';
  say $run->result;          # 'ok' if every scheduled test module passed, else 'shell: ok, webmks: fail'
  say $run->results->{shell};  # one module's result
  say $run->log;             # isotovideo's standard output and error: the job's log

=head1 DESCRIPTION

C<start(%vars)> writes F<vars.json> into a fresh pool directory: the qemu backend with the busybox guest of
F<tools/build-guest> (C<KERNEL>, C<INITRD>, C<APPEND=vga=792 ...>, C<QEMU=x86_64>, C<QEMU_NO_KVM=1>), a free
VNC display, C<CASEDIR>, C<PRODUCTDIR> and C<NEEDLES_DIR> in F<t/distri>, plus C<%vars>. With
C<BACKEND =E<gt> 'svirt'> it is a VMware job instead (C<VIRSH_VMM_FAMILY=vmware>, root for SSH and the vSphere
API, C<VMWARE_DATASTORE=datastore1>, one CPU, 256 MiB); the hosts, passwords and ports come with C<%vars>
(C<VIRSH_HOSTNAME>, C<VIRSH_PASSWORD>, C<VIRSH_GUEST>, C<VMWARE_HOST>, C<VMWARE_PASSWORD>,
C<VMWARE_SERIAL_PORT>, C<PASSWORD>). Then it runs
C<isotovideo> there in its own process group with C<PERL5OPT=-MNativeVNC::Hook> and the build's F<blib> in
C<PERL5LIB>, as the README's worker set-up does. Given a hash reference of options first,
C<start({installed =E<gt> 1}, %vars)> leaves C<PERL5LIB> and C<PERL5OPT> as they are instead: the job loads
the NativeVNC installed on the system (say, from the Debian package) if the caller's C<PERL5OPT> loads the hook,
as a worker whose only set-up is the systemd drop-in does.
C<pid>, C<pool>, C<finish($timeout)> (true once it exited),
C<result> (C<ok> when every module in F<test_order.json> passed, otherwise each module's result), C<results>
(module name to result), C<log>, C<stop> (also on DESTROY).

=cut

# The variables of a job of the qemu backend: the busybox guest under QEMU without KVM on a free display.
sub _qemu_vars ($root) {
    return (
        KERNEL => "$root/build/guest/vmlinuz",
        INITRD => "$root/build/guest/initrd.gz",
        APPEND => 'vga=792 quiet loglevel=1',
        QEMU => 'x86_64',
        QEMU_NO_KVM => 1,
        HDDSIZEGB => 1,
        VNC => free_tcp_port(from => 5910, to => 5999) - 5900,
    );
}

# The variables of a VMware job of the svirt backend that do not depend on the hosts (those come with %vars).
sub _svirt_vars () {
    return (
        WORKER_HOSTNAME => '127.0.0.1',
        VIRSH_USERNAME => 'root',
        VIRSH_VMM_FAMILY => 'vmware',
        VIRSH_VMM_TYPE => 'hvm',
        VIRSH_INSTANCE => 1,
        VMWARE_USERNAME => 'root',
        VMWARE_DATASTORE => 'datastore1',
        QEMUCPUS => 1,
        ARCH => 'x86_64',
        JOBTOKEN => 'nativevnc',
    );
}

sub start ($class, @args) {
    my %opt = ref $args[0] eq 'HASH' ? %{ shift @args } : ();
    my %vars = @args;
    my $root = repo_root();
    my $pool = tempdir('nativevnc-isotovideo-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{NATIVEVNC_KEEP_TMP});
    my $backend = $vars{BACKEND} // 'qemu';
    my %all = (
        BACKEND => $backend,
        QEMURAM => 256,
        NOVIDEO => 1,
        DISTRI => 'nativevnc',
        CASEDIR => "$root/t/distri",
        PRODUCTDIR => "$root/t/distri",
        NEEDLES_DIR => "$root/t/distri/needles",
        $backend eq 'svirt' ? _svirt_vars() : _qemu_vars($root),
        %vars,
    );
    open my $fh, '>', "$pool/vars.json" or die "$pool/vars.json: $!";
    print {$fh} $json->encode(\%all);
    close $fh;
    local $ENV{PERL5OPT} = '-MNativeVNC::Hook' unless $opt{installed};
    local $ENV{PERL5LIB} = join ':', "$root/blib/lib", "$root/blib/arch", $ENV{PERL5LIB} // () unless $opt{installed};
    my $self = bless { pool => $pool, owner => $$ }, $class;
    # isotovideo reads vars.json from its working directory.
    $self->{pid} = spawn_group(['isotovideo'], log => "$pool/isotovideo.log", dir => $pool);
    return $self;
}

sub pid ($self) { $self->{pid} }
sub pool ($self) { $self->{pool} }

sub finish ($self, $timeout) {
    my $pid = $self->{pid} or return 1;
    my $status = reap($pid, $timeout);
    return 0 unless defined $status;
    $self->{status} = $status;
    delete $self->{pid};
    # Whatever isotovideo left behind in its group (QEMU, if it did not stop it).
    signal_group($pid, 'KILL') if group_pids($pid);
    return 1;
}

# The result of every test module that ran: {name => 'ok'|'fail'|...}.
sub results ($self) {
    my %results;
    for my $file (glob "$self->{pool}/testresults/result-*.json") {
        my ($name) = $file =~ m{/result-(.+)\.json\z};
        my $text = slurp($file) // next;
        $results{$name} = eval { $json->decode($text)->{result} } // 'unreadable';
    }
    return \%results;
}

# 'ok' if every scheduled module ran and passed; otherwise what each module's result was.
sub result ($self) {
    my $results = $self->results;
    my @scheduled = map { $_->{name} } @{ _read_json("$self->{pool}/testresults/test_order.json") // [] };
    return 'no result' unless @scheduled;
    my @got = map { "$_: " . ($results->{$_} // 'did not run') } @scheduled;
    return (grep { !/: ok\z/ } @got) ? join(', ', @got) : 'ok';
}

sub _read_json ($path) {
    my $text = slurp($path) // return undef;
    return eval { $json->decode($text) };
}

sub log ($self) { file_tail("$self->{pool}/isotovideo.log", 100_000_000) }

sub stop ($self) {
    return unless $self->{pid} && $self->{owner} == $$;
    stop_group(delete $self->{pid});
}

sub DESTROY ($self) { $self->stop }

1;
