//! Encoding and pseudo-encoding numbers (RFC 6143 and the rfbproto registry).

pub const RAW: i32 = 0;
pub const COPY_RECT: i32 = 1;
pub const RRE: i32 = 2;
pub const HEXTILE: i32 = 5;
pub const ZLIB: i32 = 6;
pub const TIGHT: i32 = 7;
pub const TRLE: i32 = 15;
pub const ZRLE: i32 = 16;
pub const TIGHT_PNG: i32 = -260;

/// Tight JPEG quality levels 0..=9 are -32..=-23.
pub const JPEG_QUALITY_0: i32 = -32;
/// Tight compression levels 0..=9 are -256..=-247.
pub const COMPRESS_LEVEL_0: i32 = -256;

pub const DESKTOP_SIZE: i32 = -223;
pub const LAST_RECT: i32 = -224;
pub const CURSOR: i32 = -239;
pub const QEMU_POINTER_TYPE_CHANGE: i32 = -257;
pub const QEMU_EXT_KEY_EVENT: i32 = -258;
pub const QEMU_LED_STATE: i32 = -261;
pub const EXTENDED_DESKTOP_SIZE: i32 = -308;

/// VMware's pseudo-encodings are `0x574d5600` ("WMV\0") plus a number.
pub const VMWARE_BASE: i32 = 0x574d_5600;
pub const VMW_DEFINE_CURSOR: i32 = VMWARE_BASE + 100;
pub const VMW_CURSOR_STATE: i32 = VMWARE_BASE + 101;
pub const VMW_CURSOR_POSITION: i32 = VMWARE_BASE + 102;
pub const VMW_TYPEMATIC_INFO: i32 = VMWARE_BASE + 103;
pub const VMW_LED_STATE: i32 = VMWARE_BASE + 104;
pub const VMW_DISPLAY_MODE_CHANGE: i32 = VMWARE_BASE + 105;
pub const VMW_VIRTUAL_MACHINE_STATE: i32 = VMWARE_BASE + 106;
pub const VMW_SERVER_CAPS: i32 = VMWARE_BASE + 122;
/// The client takes pushed updates: a server that then announces UpdateAck sends updates unasked, one at a
/// time, each after the client acknowledged the one before.
pub const VMW_SERVER_PUSH2: i32 = VMWARE_BASE + 123;
pub const VMW_FRAME_STAMP: i32 = VMWARE_BASE + 124;

/// A human-readable name for logs and errors.
pub fn name(encoding: i32) -> &'static str {
    match encoding {
        RAW => "Raw",
        COPY_RECT => "CopyRect",
        RRE => "RRE",
        HEXTILE => "Hextile",
        ZLIB => "Zlib",
        TIGHT => "Tight",
        TRLE => "TRLE",
        ZRLE => "ZRLE",
        TIGHT_PNG => "TightPNG",
        DESKTOP_SIZE => "DesktopSize",
        LAST_RECT => "LastRect",
        CURSOR => "Cursor",
        QEMU_POINTER_TYPE_CHANGE => "QEMU pointer type change",
        QEMU_EXT_KEY_EVENT => "QEMU extended key event",
        QEMU_LED_STATE => "QEMU LED state",
        EXTENDED_DESKTOP_SIZE => "ExtendedDesktopSize",
        VMW_DEFINE_CURSOR => "VMware cursor",
        VMW_CURSOR_STATE => "VMware cursor state",
        VMW_CURSOR_POSITION => "VMware cursor position",
        VMW_TYPEMATIC_INFO => "VMware key repeat",
        VMW_LED_STATE => "VMware LED state",
        VMW_DISPLAY_MODE_CHANGE => "VMware display mode change",
        VMW_VIRTUAL_MACHINE_STATE => "VMware VM state",
        VMW_SERVER_CAPS => "VMware server caps",
        VMW_SERVER_PUSH2 => "VMware server push",
        VMW_FRAME_STAMP => "VMware frame stamp",
        e if (JPEG_QUALITY_0..=JPEG_QUALITY_0 + 9).contains(&e) => "JPEG quality level",
        e if (COMPRESS_LEVEL_0..=COMPRESS_LEVEL_0 + 9).contains(&e) => "compression level",
        _ => "unknown",
    }
}

/// Parses an encoding given by name (as on the command line or in a job variable) or by number.
pub fn parse(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let lower = s.to_ascii_lowercase();
    if let Some(level) = lower.strip_prefix("jpeg").and_then(|l| l.parse::<i32>().ok()) {
        return (0..=9).contains(&level).then_some(JPEG_QUALITY_0 + level);
    }
    if let Some(level) = lower.strip_prefix("compress").and_then(|l| l.parse::<i32>().ok()) {
        return (0..=9).contains(&level).then_some(COMPRESS_LEVEL_0 + level);
    }
    Some(match lower.as_str() {
        "raw" => RAW,
        "copyrect" => COPY_RECT,
        "rre" => RRE,
        "hextile" => HEXTILE,
        "zlib" => ZLIB,
        "tight" => TIGHT,
        "trle" => TRLE,
        "zrle" => ZRLE,
        "tightpng" => TIGHT_PNG,
        "desktopsize" => DESKTOP_SIZE,
        "lastrect" => LAST_RECT,
        "cursor" => CURSOR,
        "pointertypechange" => QEMU_POINTER_TYPE_CHANGE,
        "extkeyevent" => QEMU_EXT_KEY_EVENT,
        "ledstate" => QEMU_LED_STATE,
        "extendeddesktopsize" => EXTENDED_DESKTOP_SIZE,
        "vmwcursor" => VMW_DEFINE_CURSOR,
        "vmwcursorstate" => VMW_CURSOR_STATE,
        "vmwcursorposition" => VMW_CURSOR_POSITION,
        "vmwkeyrepeat" => VMW_TYPEMATIC_INFO,
        "vmwledstate" => VMW_LED_STATE,
        "vmwservercaps" => VMW_SERVER_CAPS,
        "vmwframestamp" => VMW_FRAME_STAMP,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parsing_agree() {
        for e in [RAW, COPY_RECT, RRE, HEXTILE, ZLIB, TIGHT, TRLE, ZRLE, TIGHT_PNG, DESKTOP_SIZE, LAST_RECT, CURSOR] {
            assert_eq!(parse(name(e)), Some(e), "{}", name(e));
        }
        assert_eq!(parse("jpeg9"), Some(-23));
        assert_eq!(parse("compress0"), Some(-256));
        assert_eq!(parse("-258"), Some(QEMU_EXT_KEY_EVENT));
        assert_eq!(parse("jpeg10"), None);
        assert_eq!(parse("h264"), None);
        assert_eq!(VMW_DEFINE_CURSOR, 0x574d5664);
        assert_eq!(VMW_SERVER_CAPS, 1464686202);
        for e in [VMW_CURSOR_STATE, VMW_CURSOR_POSITION, VMW_TYPEMATIC_INFO, VMW_LED_STATE, VMW_FRAME_STAMP] {
            assert_eq!(parse(&name(e).replace(' ', "").replace("VMware", "vmw")), Some(e), "{}", name(e));
        }
    }
}
