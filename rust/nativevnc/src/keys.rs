//! Key names and key codes: os-autoinst's `send_key`/`type_string` names, X11 keysyms and PC scancodes.
//!
//! os-autoinst describes a key press as a chord of key names joined by `-` (`"ctrl-alt-f2"`, `"A"`, `"@"`,
//! `"ret"`). [`chord`] turns such a chord into the X11 keysyms `consoles::VNC::map_and_send_key` sends, in
//! the same order and with the same quirks:
//!
//! * The chord is split like Perl's `split('-', $keys)`: empty fields in the middle or at the start are
//!   kept (and fail as the unknown name `''`), empty fields at the end are dropped. A literal `-` is
//!   therefore spelled `minus`.
//! * Uppercase letters and the shifted US punctuation ``~!@#$%^&*()_+{}|:"<>?`` become Shift followed by the
//!   character's *own* keysym (`"@"` is Shift_L, `at`), never the unshifted key's keysym.
//! * Any other single character from 0x1e to 0x7f stands for the keysym equal to its code. os-autoinst
//!   also maps the bytes 0x80 to 0xff, but its keys reach it as UTF-8, so a non-ASCII character is always
//!   a multi-byte name there and fails; it fails here too, with the same message.
//!
//! [`key_name_for_char`] is `type_string`'s per-character translation into such names, and
//! [`ChordTiming`] how long a chord's keys are held and how long the pause after each release is.
//!
//! For servers that take scancodes as well as keysyms (QEMU's extended key events, VMware's key events),
//! [`scancode`] gives the key on a US PC keyboard that produces a keysym, in scan code set 1. The codes
//! follow QEMU's keycodemapdb (`data/keymaps.csv`, the "AT set1 keycode" and "X11 keysym" columns) and
//! agree with the set 1 table of QEMU's PS/2 keyboard (`hw/input/ps2.c`).

use std::borrow::Cow;
use std::time::Duration;

use crate::error::Error;

// X11 keysyms (X11/keysymdef.h) of the keys that are not printable ASCII characters.
const XK_BACKSPACE: u32 = 0xff08;
const XK_TAB: u32 = 0xff09;
const XK_RETURN: u32 = 0xff0d;
const XK_SYS_REQ: u32 = 0xff15;
const XK_ESCAPE: u32 = 0xff1b;
const XK_HOME: u32 = 0xff50;
const XK_LEFT: u32 = 0xff51;
const XK_UP: u32 = 0xff52;
const XK_RIGHT: u32 = 0xff53;
const XK_DOWN: u32 = 0xff54;
const XK_PAGE_UP: u32 = 0xff55;
const XK_PAGE_DOWN: u32 = 0xff56;
const XK_END: u32 = 0xff57;
const XK_PRINT: u32 = 0xff61;
const XK_INSERT: u32 = 0xff63;
/// F1; F2 to F12 follow consecutively.
const XK_F1: u32 = 0xffbe;
const XK_F10: u32 = 0xffc7;
const XK_F11: u32 = 0xffc8;
const XK_F12: u32 = 0xffc9;
const XK_SHIFT_L: u32 = 0xffe1;
const XK_SHIFT_R: u32 = 0xffe2;
const XK_CONTROL_L: u32 = 0xffe3;
const XK_CONTROL_R: u32 = 0xffe4;
const XK_CAPS_LOCK: u32 = 0xffe5;
const XK_META_L: u32 = 0xffe7;
const XK_META_R: u32 = 0xffe8;
const XK_ALT_L: u32 = 0xffe9;
const XK_ALT_R: u32 = 0xffea;
const XK_SUPER_L: u32 = 0xffeb;
const XK_SUPER_R: u32 = 0xffec;
const XK_ISO_LEVEL3_SHIFT: u32 = 0xfe03;
const XK_DELETE: u32 = 0xffff;

/// os-autoinst's named keys (`$keymap_x11` plus the `f1`..`f12` it adds), each a single keysym.
/// `altgr` is from os-autoinst after 4.6 (it is not in every installed version).
const NAMED_KEYS: &[(&str, u32)] = &[
    ("esc", XK_ESCAPE),
    ("down", XK_DOWN),
    ("right", XK_RIGHT),
    ("up", XK_UP),
    ("left", XK_LEFT),
    ("equal", b'=' as u32),
    ("spc", b' ' as u32),
    ("minus", b'-' as u32),
    ("shift", XK_SHIFT_L),
    ("ctrl", XK_CONTROL_L),
    ("caps", XK_CAPS_LOCK),
    ("meta", XK_META_L),
    ("alt", XK_ALT_L),
    ("altgr", XK_ALT_R),
    ("ret", XK_RETURN),
    ("tab", XK_TAB),
    ("backspace", XK_BACKSPACE),
    ("end", XK_END),
    ("delete", XK_DELETE),
    ("home", XK_HOME),
    ("insert", XK_INSERT),
    ("pgup", XK_PAGE_UP),
    ("pgdn", XK_PAGE_DOWN),
    ("sysrq", XK_SYS_REQ),
    ("super", XK_SUPER_L),
    ("f1", XK_F1),
    ("f2", XK_F1 + 1),
    ("f3", XK_F1 + 2),
    ("f4", XK_F1 + 3),
    ("f5", XK_F1 + 4),
    ("f6", XK_F1 + 5),
    ("f7", XK_F1 + 6),
    ("f8", XK_F1 + 7),
    ("f9", XK_F1 + 8),
    ("f10", XK_F10),
    ("f11", XK_F11),
    ("f12", XK_F12),
];

/// The US punctuation os-autoinst's `shift_keys` sends with Shift held (its keys; the values there are
/// only used by the iKVM keymap).
const SHIFTED_PUNCTUATION: &[u8] = b"~!@#$%^&*()_+{}|:\"<>?";

/// The keysyms of one key name: `None` if os-autoinst has no mapping for it.
fn name_keysyms(name: &str) -> Option<Vec<u32>> {
    if let Some(&(_, keysym)) = NAMED_KEYS.iter().find(|(n, _)| *n == name) {
        return Some(vec![keysym]);
    }
    match *name.as_bytes() {
        [b] if b.is_ascii_uppercase() || SHIFTED_PUNCTUATION.contains(&b) => Some(vec![XK_SHIFT_L, u32::from(b)]),
        [b @ 0x1e..=0x7f] => Some(vec![u32::from(b)]),
        _ => None,
    }
}

/// os-autoinst's `keymap` as its `init_x11_keymap` builds it: every key name with its keysyms (one, or
/// Shift_L and one). Characters are the printable ASCII ones; os-autoinst's entries for Latin-1 characters
/// are never reachable through its `map_and_send_key` and are left out.
pub fn keymap() -> Vec<(String, Vec<u32>)> {
    let names = NAMED_KEYS.iter().map(|(n, _)| n.to_string()).chain((0x1e..=0x7fu8).map(|b| char::from(b).to_string()));
    names.filter_map(|n| name_keysyms(&n).map(|k| (n, k))).collect()
}

/// Names other programs give keys that os-autoinst names differently (compared in lowercase, without an
/// X11 `_l`/`_r` side suffix).
const OTHER_NAMES: &[(&str, &str)] = &[
    ("return", "ret"),
    ("enter", "ret"),
    ("escape", "esc"),
    ("space", "spc"),
    ("control", "ctrl"),
    ("page_up", "pgup"),
    ("pageup", "pgup"),
    ("prior", "pgup"),
    ("page_down", "pgdn"),
    ("pagedown", "pgdn"),
    ("next", "pgdn"),
    ("del", "delete"),
    ("ins", "insert"),
    ("win", "super"),
    ("windows", "super"),
    ("caps_lock", "caps"),
    ("capslock", "caps"),
    ("print", "sysrq"),
    ("sys_req", "sysrq"),
    ("iso_level3_shift", "altgr"),
];

/// The os-autoinst key name `name` was probably meant to be: the same name in another case or with X11's
/// spelling, or one with a single typo.
fn nearest_name(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_suffix("_l").or_else(|| lower.strip_suffix("_r")).unwrap_or(&lower);
    if let Some(&(known, _)) = NAMED_KEYS.iter().find(|(n, _)| *n == bare) {
        return Some(known);
    }
    if let Some(&(_, known)) = OTHER_NAMES.iter().find(|(other, _)| *other == bare) {
        return Some(known);
    }
    NAMED_KEYS
        .iter()
        .map(|&(n, _)| n)
        .filter(|n| !(is_function_key(n) && is_function_key(bare)))
        .find(|n| edit_distance(n, bare) == 1)
}

/// Whether `name` looks like a function key's, `f` and a number.
fn is_function_key(name: &str) -> bool {
    name.len() > 1 && name.starts_with('f') && name[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The error for a key name os-autoinst has no mapping for. It starts like os-autoinst's
/// (`No map for 'NAME'`) and says what would work instead.
fn no_map(name: &str) -> Error {
    let shown = name.escape_debug();
    let mut chars = name.chars();
    let why = match (chars.next(), chars.next()) {
        (None, _) => "an empty key name (a chord joins key names with '-', as in ctrl-alt-f2; the key '-' is \
                      'minus')"
            .to_owned(),
        (Some(c), None) => format!(
            "no key of a US keyboard types {} (U+{:04X}); only the characters a US keyboard types (printable \
             ASCII) are supported",
            if c.is_control() { "this control character" } else { "this character" },
            u32::from(c)
        ),
        _ => {
            let guess = nearest_name(name).map(|n| format!("did you mean '{n}'? ")).unwrap_or_default();
            let names: Vec<&str> = NAMED_KEYS.iter().map(|&(n, _)| n).filter(|n| !is_function_key(n)).collect();
            format!(
                "not a key name; {guess}key names are {}, f1 to f12, and single characters as a US keyboard types \
                 them",
                names.join(", ")
            )
        }
    };
    Error::usage(format!("No map for '{shown}': {why}"))
}

/// Keysyms of a chord like `"ctrl-alt-f2"`, `"A"`, `"@"`, `"ret"`, in press order (os-autoinst's
/// `map_and_send_key` order); release them in reverse.
///
/// `"ctrl-alt-f2"` is `[Control_L, Alt_L, F2]`, `"A"` is `[Shift_L, A]`, `"@"` is `[Shift_L, at]`. An empty
/// chord (`""`, or only dashes) is no keys at all, as in os-autoinst.
///
/// # Errors
///
/// [`crate::error::ErrorKind::Usage`] for the first name os-autoinst cannot map: `No map for '<key>': `, as
/// os-autoinst's message begins, and what would work instead.
pub fn chord(keys: &str) -> Result<Vec<u32>, Error> {
    let mut names: Vec<&str> = keys.split('-').collect();
    while names.last() == Some(&"") {
        names.pop();
    }
    let mut keysyms = Vec::with_capacity(names.len() + 1);
    for name in names {
        keysyms.extend(name_keysyms(name).ok_or_else(|| no_map(name))?);
    }
    Ok(keysyms)
}

/// The longest a key of a chord is held down.
const MAX_HOLD: Duration = Duration::from_millis(8);

/// How a chord takes its time, as os-autoinst's `map_and_send_key` (since its commit 8601656a): the keys are
/// pressed in order with [`Self::hold`] after each press, then released in reverse order with
/// [`Self::after_release`] after each release. A press is held for half the key's time, at most 8 ms, so
/// that slow typing does not make the guest repeat the key (Fedora bug 2392684); the rest of the time
/// follows the release, so that a key still takes its whole time and the typing rate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChordTiming {
    pub hold: Duration,
    pub after_release: Duration,
}

impl ChordTiming {
    /// The timing of a key that takes `key_time` (one over the keys per second).
    pub fn for_key_time(key_time: Duration) -> Self {
        let hold = (key_time / 2).min(MAX_HOLD);
        ChordTiming { hold, after_release: key_time - hold }
    }
}

/// The os-autoinst key name `type_string` uses for one character: `'-'` is `"minus"`, `'\t'` `"tab"`,
/// `'\n'` `"ret"`, `'\x08'` `"backspace"`, `'\x1b'` `"esc"`, `' '` `"spc"`, any other character is its own
/// name. `'\r'` gives `None`: `type_string` skips it.
pub fn key_name_for_char(c: char) -> Option<Cow<'static, str>> {
    let name = match c {
        '\r' => return None,
        '-' => "minus",
        '\t' => "tab",
        '\n' => "ret",
        '\x08' => "backspace",
        '\x1b' => "esc",
        ' ' => "spc",
        _ => return Some(Cow::Owned(c.to_string())),
    };
    Some(Cow::Borrowed(name))
}

/// A key's position on a US PC keyboard: its scan code set 1 make code, and whether it carries the 0xE0
/// prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scancode {
    /// The make code without the prefix, 0x01 to 0x7f; the break code is `code | 0x80`.
    pub code: u8,
    /// Whether the key sends 0xE0 before its code (arrows, right Ctrl/Alt, the Windows keys, ...).
    pub extended: bool,
}

impl Scancode {
    /// A key without the 0xE0 prefix.
    const fn plain(code: u8) -> Scancode {
        Scancode { code, extended: false }
    }

    /// A key with the 0xE0 prefix.
    const fn extended(code: u8) -> Scancode {
        Scancode { code, extended: true }
    }

    /// QEMU's key number ("qnum") used in QEMU extended key events: the code, plus 0x80 for extended keys.
    pub fn qnum(self) -> u32 {
        u32::from(self.code) | if self.extended { 0x80 } else { 0 }
    }

    /// VMware's "vscan" used in VMWKeyEvent: the code, plus 0x100 for extended keys.
    pub fn vscan(self) -> u16 {
        u16::from(self.code) | if self.extended { 0x100 } else { 0 }
    }
}

/// The set 1 code of the key that types a printable ASCII character on a US keyboard, shifted or not.
fn ascii_scancode(c: u8) -> Option<u8> {
    let code = match c.to_ascii_lowercase() {
        b'1' | b'!' => 0x02,
        b'2' | b'@' => 0x03,
        b'3' | b'#' => 0x04,
        b'4' | b'$' => 0x05,
        b'5' | b'%' => 0x06,
        b'6' | b'^' => 0x07,
        b'7' | b'&' => 0x08,
        b'8' | b'*' => 0x09,
        b'9' | b'(' => 0x0a,
        b'0' | b')' => 0x0b,
        b'-' | b'_' => 0x0c,
        b'=' | b'+' => 0x0d,
        b'q' => 0x10,
        b'w' => 0x11,
        b'e' => 0x12,
        b'r' => 0x13,
        b't' => 0x14,
        b'y' => 0x15,
        b'u' => 0x16,
        b'i' => 0x17,
        b'o' => 0x18,
        b'p' => 0x19,
        b'[' | b'{' => 0x1a,
        b']' | b'}' => 0x1b,
        b'a' => 0x1e,
        b's' => 0x1f,
        b'd' => 0x20,
        b'f' => 0x21,
        b'g' => 0x22,
        b'h' => 0x23,
        b'j' => 0x24,
        b'k' => 0x25,
        b'l' => 0x26,
        b';' | b':' => 0x27,
        b'\'' | b'"' => 0x28,
        b'`' | b'~' => 0x29,
        b'\\' | b'|' => 0x2b,
        b'z' => 0x2c,
        b'x' => 0x2d,
        b'c' => 0x2e,
        b'v' => 0x2f,
        b'b' => 0x30,
        b'n' => 0x31,
        b'm' => 0x32,
        b',' | b'<' => 0x33,
        b'.' | b'>' => 0x34,
        b'/' | b'?' => 0x35,
        b' ' => 0x39,
        _ => return None,
    };
    Some(code)
}

/// The US-layout key that produces `keysym` (with or without shift held): `'a'` and `'A'` are the same key,
/// `'2'` and `'@'` are the same key. `None` for keysyms with no key on a US keyboard (e.g. most Latin-1
/// letters).
///
/// Left and right modifiers are distinct keys. Meta and Super are both the Windows key of their side
/// (os-autoinst's `meta` and `super` are both the left one, E0 5B), AltGr (Alt_R, ISO_Level3_Shift) is the
/// right Alt key, and Print and Sys_Req are the one Print Screen/SysRq key, for which QEMU prefers the key
/// number 0x54 (its code with Alt held, what the Linux magic SysRq key expects).
pub fn scancode(keysym: u32) -> Option<Scancode> {
    let scancode = match keysym {
        0x20..=0x7e => Scancode::plain(ascii_scancode(keysym as u8)?),
        XK_ESCAPE => Scancode::plain(0x01),
        XK_BACKSPACE => Scancode::plain(0x0e),
        XK_TAB => Scancode::plain(0x0f),
        XK_RETURN => Scancode::plain(0x1c),
        XK_CONTROL_L => Scancode::plain(0x1d),
        XK_SHIFT_L => Scancode::plain(0x2a),
        XK_SHIFT_R => Scancode::plain(0x36),
        XK_ALT_L => Scancode::plain(0x38),
        XK_CAPS_LOCK => Scancode::plain(0x3a),
        XK_F1..=XK_F10 => Scancode::plain(0x3b + (keysym - XK_F1) as u8),
        XK_SYS_REQ | XK_PRINT => Scancode::plain(0x54),
        XK_F11 => Scancode::plain(0x57),
        XK_F12 => Scancode::plain(0x58),
        XK_CONTROL_R => Scancode::extended(0x1d),
        XK_ALT_R | XK_ISO_LEVEL3_SHIFT => Scancode::extended(0x38),
        XK_HOME => Scancode::extended(0x47),
        XK_UP => Scancode::extended(0x48),
        XK_PAGE_UP => Scancode::extended(0x49),
        XK_LEFT => Scancode::extended(0x4b),
        XK_RIGHT => Scancode::extended(0x4d),
        XK_END => Scancode::extended(0x4f),
        XK_DOWN => Scancode::extended(0x50),
        XK_PAGE_DOWN => Scancode::extended(0x51),
        XK_INSERT => Scancode::extended(0x52),
        XK_DELETE => Scancode::extended(0x53),
        XK_META_L | XK_SUPER_L => Scancode::extended(0x5b),
        XK_META_R | XK_SUPER_R => Scancode::extended(0x5c),
        _ => return None,
    };
    Some(scancode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn chords_hold_half_the_key_time_up_to_8_ms() {
        let ms = Duration::from_millis;
        let t = ChordTiming::for_key_time(ms(10));
        assert_eq!((t.hold, t.after_release), (ms(5), ms(5)));
        let t = ChordTiming::for_key_time(Duration::from_secs_f64(1.0 / 30.0));
        assert_eq!(t.hold, ms(8));
        assert_eq!(t.hold + t.after_release, Duration::from_secs_f64(1.0 / 30.0));
        assert_eq!(ChordTiming::for_key_time(Duration::ZERO), ChordTiming { hold: ms(0), after_release: ms(0) });
    }

    fn no_map_message(name: &str) -> String {
        no_map(name).message().to_owned()
    }

    fn assert_no_map(keys: &str, name: &str) {
        let err = chord(keys).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{keys:?}");
        assert_eq!(err.message(), no_map_message(name), "{keys:?}");
        assert!(err.message().starts_with(&format!("No map for '{}': ", name.escape_debug())), "{err}");
    }

    #[test]
    fn chords_map_like_os_autoinst() {
        assert_eq!(chord("ctrl-alt-f2").unwrap(), [0xffe3, 0xffe9, 0xffbf]);
        assert_eq!(chord("a").unwrap(), [0x61]);
        assert_eq!(chord("A").unwrap(), [0xffe1, 0x41]);
        assert_eq!(chord("@").unwrap(), [0xffe1, 0x40]);
        assert_eq!(chord("minus").unwrap(), [0x2d]);
        assert_eq!(chord("equal").unwrap(), [0x3d]);
        assert_eq!(chord("spc").unwrap(), [0x20]);
        assert_eq!(chord("shift-ret").unwrap(), [0xffe1, 0xff0d]);
        assert_eq!(chord("super").unwrap(), [0xffeb]);
        assert_eq!(chord("meta").unwrap(), [0xffe7]);
        assert_eq!(chord("altgr").unwrap(), [0xffea]);
        assert_eq!(chord("f1").unwrap(), [0xffbe]);
        assert_eq!(chord("f12").unwrap(), [0xffc9]);
        assert_eq!(chord("alt-sysrq-b").unwrap(), [0xffe9, 0xff15, 0x62]);
        assert_eq!(chord("ctrl-shift-T").unwrap(), [0xffe3, 0xffe1, 0xffe1, 0x54]);
        assert_eq!(chord("shift-delete").unwrap(), [0xffe1, 0xffff]);
    }

    #[test]
    fn unknown_names_fail_with_os_autoinst_message() {
        assert_no_map("nosuchkey", "nosuchkey");
        assert_no_map("ctrl-ü", "ü");
        assert_no_map("ctrl-nosuchkey-a", "nosuchkey");
        assert_no_map("f0", "f0");
        assert_no_map("f13", "f13");
        assert_no_map("f01", "f01");
        assert_no_map("Ret", "Ret");
        assert_no_map("\u{1}", "\u{1}");
        assert_no_map("\u{80}", "\u{80}");
    }

    #[test]
    fn unknown_names_suggest_the_nearest() {
        let said = |keys: &str| chord(keys).unwrap_err().message().to_owned();
        for (wrong, meant) in [
            ("Return", "ret"),
            ("enter", "ret"),
            ("Ret", "ret"),
            ("Escape", "esc"),
            ("Control_L", "ctrl"),
            ("Shift_R", "shift"),
            ("F2", "f2"),
            ("Page_Up", "pgup"),
            ("BackSpace", "backspace"),
            ("ctl", "ctrl"),
            ("dlete", "delete"),
        ] {
            let m = said(wrong);
            assert!(m.starts_with(&format!("No map for '{wrong}': not a key name; did you mean '{meant}'? ")), "{m}");
            assert!(m.contains("key names are esc, down, ") && m.contains(", f1 to f12, "), "{m}");
            assert!(!m.contains("layout"), "{m}");
        }
        for unlike in ["nosuchkey", "f13", "f0"] {
            assert!(!said(unlike).contains("did you mean"), "{unlike}");
        }
    }

    #[test]
    fn characters_without_a_key_are_named() {
        assert_eq!(
            chord("ü").unwrap_err().message(),
            "No map for 'ü': no key of a US keyboard types this character (U+00FC); only the characters a US \
             keyboard types (printable ASCII) are supported"
        );
        let control = chord("\u{7}").unwrap_err();
        assert!(
            control.message().starts_with("No map for '\\u{7}': no key of a US keyboard types this control"),
            "{control}"
        );
        assert!(chord("-a").unwrap_err().message().starts_with("No map for '': an empty key name"));
    }

    #[test]
    fn chords_split_like_perl() {
        assert_eq!(chord("ctrl-").unwrap(), [0xffe3]);
        assert_eq!(chord("ctrl--").unwrap(), [0xffe3]);
        assert_eq!(chord("").unwrap(), Vec::<u32>::new());
        assert_eq!(chord("-").unwrap(), Vec::<u32>::new());
        assert_eq!(chord("---").unwrap(), Vec::<u32>::new());
        assert_no_map("-a", "");
        assert_no_map("ctrl--a", "");
    }

    /// What os-autoinst sends for `type_string` of one printable ASCII character.
    fn os_autoinst_typed(c: u8) -> Vec<u32> {
        if c.is_ascii_uppercase() || br#"~!@#$%^&*()_+{}|:"<>?"#.contains(&c) {
            vec![0xffe1, u32::from(c)]
        } else {
            vec![u32::from(c)]
        }
    }

    fn typed(c: char) -> Vec<u32> {
        chord(&key_name_for_char(c).unwrap()).unwrap()
    }

    #[test]
    fn printable_ascii_round_trips() {
        for c in 0x20..=0x7eu8 {
            assert_eq!(typed(char::from(c)), os_autoinst_typed(c), "{:?}", char::from(c));
        }
        assert_eq!(key_name_for_char('-').unwrap(), "minus");
        assert_eq!(key_name_for_char(' ').unwrap(), "spc");
        assert_eq!(key_name_for_char('x').unwrap(), "x");
    }

    #[test]
    fn control_characters_type_their_keys() {
        assert_eq!(key_name_for_char('\r'), None);
        assert_eq!(key_name_for_char('\t').unwrap(), "tab");
        assert_eq!(key_name_for_char('\n').unwrap(), "ret");
        assert_eq!(key_name_for_char('\x08').unwrap(), "backspace");
        assert_eq!(key_name_for_char('\x1b').unwrap(), "esc");
        assert_eq!(typed('\t'), [0xff09]);
        assert_eq!(typed('\n'), [0xff0d]);
        assert_eq!(typed('\x08'), [0xff08]);
        assert_eq!(typed('\x1b'), [0xff1b]);
        let err = chord(&key_name_for_char('\x07').unwrap()).unwrap_err();
        assert_eq!(err.message(), no_map_message("\x07"));
    }

    #[test]
    fn non_ascii_characters_fail_like_os_autoinst() {
        assert_eq!(key_name_for_char('ü').unwrap(), "ü");
        assert_eq!(chord(&key_name_for_char('ü').unwrap()).unwrap_err().message(), no_map_message("ü"));
        assert_eq!(chord("€").unwrap_err().message(), no_map_message("€"));
    }

    #[test]
    fn every_typeable_keysym_has_a_scancode() {
        for c in 0x20..=0x7eu8 {
            for keysym in typed(char::from(c)) {
                assert!(scancode(keysym).is_some(), "{:?}: keysym {keysym:#x}", char::from(c));
            }
        }
        for c in ['\t', '\n', '\x08', '\x1b'] {
            for keysym in typed(c) {
                assert!(scancode(keysym).is_some(), "{c:?}: keysym {keysym:#x}");
            }
        }
    }

    /// Every name os-autoinst accepts has a scancode, except the single characters 0x1e, 0x1f and 0x7f,
    /// which os-autoinst sends as keysyms that no key produces.
    #[test]
    fn every_named_key_has_a_scancode() {
        for &(name, _) in NAMED_KEYS {
            for keysym in chord(name).unwrap() {
                assert!(scancode(keysym).is_some(), "{name}: keysym {keysym:#x}");
            }
        }
        for b in 0x1e..=0x7fu8 {
            let name = char::from(b).to_string();
            let keysyms = chord(&name).unwrap();
            let covered = keysyms.iter().all(|&k| scancode(k).is_some());
            assert_eq!(covered, ![0x1e, 0x1f, 0x7f].contains(&b), "{name:?}");
        }
    }

    #[test]
    fn shifted_characters_share_their_key() {
        let pairs = [
            "aA", "zZ", "`~", "1!", "2@", "3#", "4$", "5%", "6^", "7&", "8*", "9(", "0)", "-_", "=+", "[{", "]}",
            "\\|", ";:", "'\"", ",<", ".>", "/?",
        ];
        for pair in pairs {
            let [plain, shifted] = pair.as_bytes() else { unreachable!() };
            assert_eq!(scancode(u32::from(*plain)), scancode(u32::from(*shifted)), "{pair}");
        }
        for c in b'a'..=b'z' {
            assert_eq!(scancode(u32::from(c)), scancode(u32::from(c.to_ascii_uppercase())));
        }
    }

    #[test]
    fn scancodes_and_qnums() {
        assert_eq!(scancode(b'a'.into()), Some(Scancode { code: 0x1e, extended: false }));
        assert_eq!(scancode(b'a'.into()).unwrap().qnum(), 0x1e);
        assert_eq!(scancode(XK_UP).unwrap().qnum(), 0xc8);
        assert_eq!(scancode(XK_CONTROL_R).unwrap().qnum(), 0x9d);
        assert_eq!(scancode(XK_CONTROL_L).unwrap().qnum(), 0x1d);
        assert_eq!(scancode(XK_ALT_R).unwrap().qnum(), 0xb8);
        assert_eq!(scancode(XK_ISO_LEVEL3_SHIFT), scancode(XK_ALT_R));
        assert_eq!(scancode(XK_SUPER_L).unwrap().qnum(), 0xdb);
        assert_eq!(scancode(XK_META_L), scancode(XK_SUPER_L));
        assert_eq!(scancode(XK_SHIFT_R).unwrap().qnum(), 0x36);
        assert_eq!(scancode(XK_SYS_REQ).unwrap().qnum(), 0x54);
        assert_eq!(scancode(XK_F1).unwrap().qnum(), 0x3b);
        assert_eq!(scancode(XK_F10).unwrap().qnum(), 0x44);
        assert_eq!(scancode(XK_F11).unwrap().qnum(), 0x57);
        assert_eq!(scancode(XK_F12).unwrap().qnum(), 0x58);
        assert_eq!(scancode(XK_DELETE).unwrap().qnum(), 0xd3);
        assert_eq!(scancode(b' '.into()).unwrap().qnum(), 0x39);
        assert_eq!(scancode(0xe4), None, "adiaeresis");
        assert_eq!(scancode(0x7f), None);
        assert_eq!(scancode(0), None);
    }

    /// Two keysyms share a key only when one is the other shifted or they are documented aliases: a typo in
    /// the tables shows up as an unexpected collision.
    #[test]
    fn distinct_keys_have_distinct_scancodes() {
        let aliases =
            [(XK_META_L, XK_SUPER_L), (XK_META_R, XK_SUPER_R), (XK_ALT_R, XK_ISO_LEVEL3_SHIFT), (XK_SYS_REQ, XK_PRINT)];
        let mut seen: Vec<(Scancode, u32)> = Vec::new();
        for keysym in (0..=0xffffu32).filter(|&k| scancode(k).is_some()) {
            let code = scancode(keysym).unwrap();
            assert!(code.code > 0 && code.code < 0x80, "{keysym:#x}");
            let canonical = match u8::try_from(keysym) {
                Ok(c) => scancode_owner(c),
                Err(_) => aliases.iter().find(|(_, alias)| *alias == keysym).map_or(keysym, |(first, _)| *first),
            };
            match seen.iter().find(|(c, _)| *c == code) {
                Some(&(_, owner)) => {
                    assert_eq!(owner, canonical, "{keysym:#x} collides with {owner:#x}")
                }
                None => seen.push((code, canonical)),
            }
        }
    }

    /// The unshifted character of the key that types ASCII `c`.
    fn scancode_owner(c: u8) -> u32 {
        let unshifted = b"`1234567890-=[]\\;',./";
        let shifted = b"~!@#$%^&*()_+{}|:\"<>?";
        let c = match shifted.iter().position(|&s| s == c) {
            Some(i) => unshifted[i],
            None => c.to_ascii_lowercase(),
        };
        u32::from(c)
    }
}
