# The guest through a VMware webmks console (webmks-sim): the screen, typing across a connection the server
# drops in the middle of a type_string (a relogin with a fresh ticket, no key lost), a connection that stops
# sending updates (a relogin within VNC_STALL_THRESHOLD), and the job going on afterwards.
use v5.36;
use base 'basetest';
use testapi;
use simcontrol;
use Time::HiRes ();

sub run ($self) {
    select_console 'webmks';
    assert_screen 'typed-output', 60;

    # The simulator drops the connection right after the 10th key release from now, in the middle of the
    # line; the console logs in again with a new ticket and the rest of the line still arrives, in order.
    simulator('close-after-keys?n=10');
    type_string "echo \$((6 * 8))-webmks-relogin\n";
    assert_screen 'webmks-relogin', 60;

    # The connection stops sending updates; typing still reaches the guest, but its output only shows once
    # the console noticed the stall and logged in again.
    my $threshold = get_var('VNC_STALL_THRESHOLD', 4);
    simulator('stall');
    my $start = Time::HiRes::time;
    type_string "echo \$((5 * 5))-after-stall\n";
    assert_screen 'webmks-after-stall', $threshold + 6;
    record_info('stall', sprintf('the screen was back %.1f s after the stall', Time::HiRes::time - $start));

    # The job goes on, on the other console too.
    select_console 'sut';
    assert_screen 'webmks-after-stall', 30;
}

1;
