# The VM's serial line, as the svirt backend reads it for VMware: socat to VMWARE_HOST:VMWARE_SERIAL_PORT over
# SSH on VIRSH_HOSTNAME. A line the guest writes to its serial port must reach wait_serial.
use v5.36;
use base 'basetest';
use testapi;

sub run ($self) {
    type_string "echo svirt-serial-\$((3 * 4)) > /dev/ttyS0\n";
    wait_serial('svirt-serial-12', 60) or die 'the guest\'s serial line did not reach wait_serial';
}

1;
