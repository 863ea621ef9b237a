# The test control endpoint of webmks-sim (the project's stand-in ESXi host), for test modules that make the
# simulator misbehave on purpose: POST https://HOST:PORT/_sim/ACTION (loopback only, self-signed certificate).
package simcontrol;

use v5.36;
use Exporter 'import';
use Mojo::UserAgent;
use testapi;

our @EXPORT = qw(simulator);

# POSTs ACTION (e.g. 'close-after-keys?n=10', 'stall') to the URL in WEBMKS_SIM_CONTROL; dies if refused.
sub simulator ($action) {
    my $tx = Mojo::UserAgent->new(insecure => 1)->post(get_required_var('WEBMKS_SIM_CONTROL') . $action);
    my $res = $tx->result;
    die "webmks-sim $action: " . $res->code . ' ' . $res->body unless $res->is_success;
    record_info('webmks-sim', $res->body);
}

1;
