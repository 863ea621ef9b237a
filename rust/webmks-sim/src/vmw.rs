//! VMware server messages (type 127): `u8 127, u8 id, u16 length` (the length counts the 4-byte header),
//! then the payload.

use nativevnc::codec::Put;
use nativevnc::messages::{server_type, vmw_server_caps};

/// The server capabilities the simulator announces: VMWKeyEvent, ClientCaps and SessionClose.
pub const SERVER_CAPS: u32 = vmw_server_caps::KEY_EVENT | vmw_server_caps::CLIENT_CAPS | vmw_server_caps::SESSION_CLOSE;

/// The capabilities announced to a client: [`SERVER_CAPS`], and UpdateAck to a client that takes pushed
/// updates (VMWServerPush2, which VMware's own client always asks for): it then acknowledges each update
/// instead of requesting the next.
pub fn server_caps_for(push: bool) -> u32 {
    SERVER_CAPS | if push { vmw_server_caps::UPDATE_ACK } else { 0 }
}

/// A subtype no VMware client knows, to check that clients skip what they do not understand.
pub const UNKNOWN_SUBTYPE: u8 = 0xc8;

/// SessionClose reason the simulator sends when told to close connections (`POST /_sim/close`).
pub const CLOSE_REASON_ADMIN: u32 = 2;
/// SessionClose reason when the VNC server behind the console went away.
pub const CLOSE_REASON_BACKEND_GONE: u32 = 3;

/// A type-127 message with subtype `id` and `payload`.
pub fn message(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![server_type::VMWARE, id];
    m.put_u16((4 + payload.len()) as u16);
    m.extend_from_slice(payload);
    m
}

pub fn server_caps(caps: u32) -> Vec<u8> {
    message(server_type::VMW_SERVER_CAPS, &caps.to_be_bytes())
}

/// Heartbeat with its interval in seconds.
pub fn heartbeat(interval: u16) -> Vec<u8> {
    message(server_type::VMW_HEARTBEAT, &interval.to_be_bytes())
}

pub fn set_reconnect_token(token: &str) -> Vec<u8> {
    message(server_type::VMW_SET_RECONNECT_TOKEN, token.as_bytes())
}

pub fn session_close(reason: u32) -> Vec<u8> {
    message(server_type::VMW_SESSION_CLOSE, &reason.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_formats() {
        assert_eq!(server_caps(SERVER_CAPS), [127, 0, 0, 8, 0, 2, 0, 0x0a]);
        assert_eq!(server_caps(server_caps_for(true)), [127, 0, 0, 8, 0, 2, 0, 0x2a]);
        assert_eq!(server_caps_for(false), SERVER_CAPS);
        assert_eq!(heartbeat(3), [127, 4, 0, 6, 0, 3]);
        assert_eq!(set_reconnect_token("ab"), [127, 6, 0, 6, b'a', b'b']);
        assert_eq!(session_close(2), [127, 7, 0, 8, 0, 0, 0, 2]);
        assert_eq!(message(UNKNOWN_SUBTYPE, &[1, 2, 3]), [127, 0xc8, 0, 7, 1, 2, 3]);
    }
}
