package NativeVNC::Hook;

use v5.36;

our $VERSION = 'v0.1.0';

# The native client for a job that asks for it with VNC_CLIENT=native, else nothing.
sub native_console ($class, @args) {
    no warnings 'once';
    return undef unless $class eq 'consoles::VNC' && ($bmwqemu::vars{VNC_CLIENT} // '') eq 'native';
    require consoles::NativeVNC;
    my $vnc = consoles::NativeVNC->new(@args);
    my $message = 'VNC_CLIENT=native: consoles::NativeVNC serves the VNC console for ' . $vnc->target;
    defined &bmwqemu::diag ? bmwqemu::diag($message) : warn "$message\n";
    return $vnc;
}

# os-autoinst's consoles::VNC has no constructor of its own: it inherits Mojo::Base's. This one, defined
# before os-autoinst is loaded (its directory is not even in @INC yet when PERL5OPT loads this module), takes
# precedence over the inherited one and hands over to it unless the job asked for the native client.
package consoles::VNC {
    sub new ($class, @args) {
        return NativeVNC::Hook::native_console($class, @args) // $class->SUPER::new(@args);
    }
}

1;

=head1 NAME

NativeVNC::Hook - let os-autoinst jobs choose the native VNC client with C<VNC_CLIENT=native>

=head1 SYNOPSIS

In the worker's environment (for example a systemd drop-in of the openQA worker service):

  PERL5OPT=-MNativeVNC::Hook
  PERL5LIB=/path/to/NativeVNC/blib/lib:/path/to/NativeVNC/blib/arch   # only for a build that is not installed

and in a job (or test suite, or machine) that should use it:

  VNC_CLIENT=native

=head1 DESCRIPTION

Loaded into every perl of the worker, the module gives os-autoinst's C<consoles::VNC> a constructor of its
own in front of the one it inherits from Mojo::Base, and changes nothing else. Every VNC console os-autoinst creates
(C<consoles::vnc_base::connect_remote>, used by the qemu, svirt and generalhw backends and by the test
distributions' C<vnc-base> consoles) goes through that constructor. When the job's C<VNC_CLIENT> variable is
C<native>, that constructor returns a L<consoles::NativeVNC> with the same arguments and logs

  VNC_CLIENT=native: consoles::NativeVNC serves the VNC console for HOST:PORT

(C<webmks via API-HOST> for a VMware webmks console) in the backend's log; otherwise it calls the inherited constructor with the same arguments, and nothing is
logged. The variable is read when the console is created, in the backend process, so the switch survives
isotovideo's fork of the backend (the hook is loaded in the parent).

=head2 native_console($class, @args)

The L<consoles::NativeVNC> for C<consoles::VNC-E<gt>new(@args)> when the job's C<VNC_CLIENT> is C<native>,
otherwise undef.

=cut
