# The guest's shell through the VNC console: the prompt, a typed command and its output, a chord, the mouse.
use v5.36;
use base 'basetest';
use testapi;

sub run ($self) {
    assert_screen 'busybox-shell', 180;
    type_string 'echo wrong';
    # busybox ash: ctrl-u erases the line typed so far, so only a working chord leaves the right command.
    send_key 'ctrl-u';
    type_string 'echo $((6 * 7))-typed';
    send_key 'ret';
    assert_screen 'typed-output', 60;
    mouse_set(100, 200);
    mouse_click;
    mouse_hide;
}

1;
