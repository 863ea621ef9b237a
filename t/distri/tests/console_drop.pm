# The VM's webmks console dropped by the simulated host in the middle of a type_string: the console logs in
# again with a fresh ticket and the whole line still arrives.
use v5.36;
use base 'basetest';
use testapi;
use simcontrol;

sub run ($self) {
    simulator('close-after-keys?n=10');
    type_string "echo \$((6 * 8))-webmks-relogin\n";
    assert_screen 'webmks-relogin', 60;
}

1;
