//! Entry points for the fuzz targets in `fuzz/`, one function per target. This module exists only when the
//! crate is built with `--cfg fuzzing` (as `cargo fuzz` does) or for its tests, which replay every seed and
//! every regression input of every target; it adds nothing to the normal build.
//!
//! Each function takes the fuzzer's bytes, uses the first of them to choose a configuration, and feeds the
//! rest to the code under test. It panics only where that code does, or where an invariant the session
//! relies on is broken: a decoder saying it used more bytes than it was given, or a stream decoding
//! differently when it arrives in pieces than when it arrives at once.

use crate::codec::{Parse, Put, ReadError, Reader};
use crate::config::{Config, Limits};
use crate::decode::{Ctx, Decoder, Progress, Scratch, Streams};
use crate::encoding as enc;
use crate::error::ProtocolError;
use crate::framebuffer::{Framebuffer, Rect};
use crate::handshake::Credentials;
use crate::messages::ClientMessage;
use crate::pixel::{PixelFormat, PixelReader};
use crate::server_messages::{PseudoRect, RectHeader, ServerMessage};
use crate::session::{Event, Session};
use crate::tls::Verification;

/// Pixel formats real servers send or clients ask for: the shapes every decoder has a path for.
const FORMATS: [PixelFormat; 8] = [
    PixelFormat::BGRX,
    true_colour(32, 24, true, [255, 255, 255], [16, 8, 0]),
    true_colour(32, 24, false, [255, 255, 255], [0, 8, 16]),
    true_colour(32, 32, false, [1023, 1023, 1023], [20, 10, 0]),
    true_colour(16, 16, false, [31, 63, 31], [11, 5, 0]),
    true_colour(16, 15, true, [31, 31, 31], [10, 5, 0]),
    true_colour(8, 8, false, [7, 7, 3], [0, 3, 6]),
    PixelFormat::COLOUR_MAPPED,
];

const fn true_colour(bits_per_pixel: u8, depth: u8, big_endian: bool, max: [u16; 3], shift: [u8; 3]) -> PixelFormat {
    PixelFormat {
        bits_per_pixel,
        depth,
        big_endian,
        true_colour: true,
        red_max: max[0],
        green_max: max[1],
        blue_max: max[2],
        red_shift: shift[0],
        green_shift: shift[1],
        blue_shift: shift[2],
    }
}

/// The pixel encodings [`Decoder`] handles.
const PIXEL_ENCODINGS: [i32; 9] =
    [enc::RAW, enc::COPY_RECT, enc::RRE, enc::HEXTILE, enc::ZLIB, enc::TIGHT, enc::TIGHT_PNG, enc::TRLE, enc::ZRLE];

/// Takes the first byte of `data`, 0 when there is none.
fn byte(data: &mut &[u8]) -> u8 {
    match data.split_first() {
        Some((&b, rest)) => {
            *data = rest;
            b
        }
        None => 0,
    }
}

/// How big the pieces are that a stream arrives in: 1 to 64 bytes, or everything at once.
fn piece_len(selector: u8) -> usize {
    match selector & 0x3f {
        0 => usize::MAX,
        n => usize::from(n),
    }
}

/// A server's side of an RFB 3.8 handshake without security, up to and including a valid ServerInit.
pub fn server_init(width: u16, height: u16, format: &PixelFormat) -> Vec<u8> {
    let mut v = b"RFB 003.008\n".to_vec();
    v.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
    v.put_u16(width);
    v.put_u16(height);
    format.encode(&mut v);
    v.put_u32(4);
    v.extend_from_slice(b"fuzz");
    v
}

/// What a session made of a server stream: the events, the framebuffer, and whether it ended in an error.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    pixels: Option<Vec<u8>>,
    failed: bool,
}

/// Feeds `stream` to a new session in pieces of `piece` bytes, answering as a client would: the output is
/// drained, and after every update the next one is requested and a key is sent.
fn run_session(config: &Config, credentials: &Credentials, stream: &[u8], piece: usize) -> Outcome {
    let mut session = Session::new(config.clone(), credentials.clone());
    let mut events = Vec::new();
    let mut failed = false;
    for chunk in stream.chunks(piece.min(stream.len()).max(1)) {
        failed = session.feed(chunk).is_err();
        while let Some(event) = session.next_event() {
            if event == Event::Update {
                session.request_update(true);
                session.key(u32::from(b'a'), true);
            }
            events.push(event);
        }
        session.take_output();
        session.take_damage();
        if failed {
            break;
        }
    }
    let pixels = session.framebuffer().map(|fb| fb.bytes().to_vec());
    Outcome { events, pixels, failed }
}

/// Runs `stream` through the session whole and in pieces; both must end the same way.
fn check_session(config: &Config, credentials: &Credentials, stream: &[u8], piece: usize) {
    let whole = run_session(config, credentials, stream, usize::MAX);
    if piece != usize::MAX {
        let pieces = run_session(config, credentials, stream, piece);
        assert_eq!(whole.failed, pieces.failed, "the stream failed differently in pieces of {piece}");
        assert_eq!(whole.events, pieces.events, "the stream gave other events in pieces of {piece}");
        if !whole.failed {
            assert!(whole.pixels == pieces.pixels, "the stream drew other pixels in pieces of {piece}");
        }
    }
}

/// The `handshake` target: the first byte chooses a password, the shared flag and the piece size; the rest
/// is the server's side of the handshake (and whatever follows it).
pub fn handshake(mut data: &[u8]) {
    let options = byte(&mut data);
    let password = (options & 1 != 0).then(|| "secret".to_owned());
    let config = Config { shared: options & 2 != 0, ..Config::default() };
    check_session(&config, &Credentials::new(password), data, piece_len(options >> 2));
}

/// The `session_stream` target: a valid ServerInit, then arbitrary server messages. The first byte picks the
/// server's pixel format, the second the dialect (RFB with the server's format or with the one the client
/// asks for, or VMware webmks, with or without scancode keys) and the piece size, the next two the
/// framebuffer's size (up to 64 x 64).
pub fn session_stream(mut data: &[u8]) {
    let format = FORMATS[usize::from(byte(&mut data)) % FORMATS.len()];
    let options = byte(&mut data);
    let width = u16::from(byte(&mut data) % 64 + 1);
    let height = u16::from(byte(&mut data) % 64 + 1);
    let mut config = match options & 3 {
        0 => Config::default(),
        1 => Config { pixel_format: None, ..Config::default() },
        _ => Config::webmks(),
    };
    config.scancode_keys = options & 3 != 3;
    let mut stream = server_init(width, height, &format);
    stream.extend_from_slice(data);
    check_session(&config, &Credentials::default(), &stream, piece_len(options >> 2));
}

/// The `vmw_messages` target: a VMware session after ServerInit, fed type-127 messages. The input is a
/// series of `ID LEN BODY[LEN]` records, each sent as `127 ID LEN+4 BODY`; the last may be cut short. (Lengths
/// shorter than the header come from `session_stream`, whose VMware dialect takes raw bytes.)
pub fn vmw_messages(mut data: &[u8]) {
    let piece = piece_len(byte(&mut data));
    let mut stream = server_init(16, 16, &PixelFormat::BGRX);
    while data.len() >= 2 {
        let (id, len) = (data[0], usize::from(data[1]));
        let body = &data[2..data.len().min(2 + len)];
        stream.extend_from_slice(&[127, id]);
        stream.put_u16(len as u16 + 4);
        stream.extend_from_slice(body);
        data = &data[2 + body.len()..];
    }
    stream.extend_from_slice(data);
    check_session(&Config::webmks(), &Credentials::default(), &stream, piece);
}

/// The `client_messages` target: client messages as the webmks simulator reads them. Every message read
/// must read back the same from its own encoding.
pub fn client_messages(data: &[u8]) {
    const MAX_LEN: usize = 1 << 16;
    let mut r = Reader::new(data);
    while let Ok(message) = ClientMessage::read(&mut r, MAX_LEN) {
        let mut encoded = Vec::new();
        message.encode(&mut encoded);
        let again = ClientMessage::read(&mut Reader::new(&encoded), MAX_LEN);
        assert_eq!(again.as_ref(), Ok(&message), "{message:?} does not read back");
    }
}

/// What the typed server-message parsers made of a stream, unit by unit.
#[derive(Debug, PartialEq)]
enum Parsed {
    Message(ServerMessage),
    Rect(RectHeader),
    Pseudo(PseudoRect),
    Failed(ProtocolError),
}

/// What the parsers expect next in a server stream.
#[derive(Clone, Copy)]
enum Next {
    Message,
    /// A rectangle header of an update with `remaining` rectangles left.
    Rect {
        remaining: u16,
    },
    /// The data of a pseudo-rectangle.
    Pseudo {
        header: RectHeader,
        remaining: u16,
    },
    /// Trailing bytes of a message, to be skipped.
    Skip {
        left: u64,
    },
}

/// Parses `stream` with the typed parsers of [`crate::server_messages`] as the session reads it, offering the
/// bytes `piece` at a time: a unit cut off by the end of what was offered is tried again from its start with
/// more. Stops at the first error, at a rectangle with pixel data (which only a decoder reads), or at the end
/// of the stream; returns the units and the bytes they used. Every message must read back the same from its
/// own encoding, and every rectangle header must encode to the bytes it came from.
fn parse_server_stream(stream: &[u8], piece: usize, pixels: &PixelReader, limits: &Limits) -> (Vec<Parsed>, usize) {
    let mut units = Vec::new();
    let mut next = Next::Message;
    let (mut start, mut end) = (0, piece.min(stream.len()));
    loop {
        let offered = &stream[start..end];
        let mut r = Reader::new(offered);
        let step: Parse<Option<Parsed>> = match next {
            Next::Message => ServerMessage::read(&mut r, limits).map(|message| {
                let mut encoded = Vec::new();
                message.encode(&mut encoded);
                let again = ServerMessage::read(&mut Reader::new(&encoded), limits);
                assert_eq!(again.as_ref(), Ok(&message), "{message:?} does not read back");
                next = match message {
                    ServerMessage::FramebufferUpdate { rectangles, .. } => Next::Rect { remaining: rectangles },
                    _ if message.trailing() > 0 => Next::Skip { left: message.trailing() },
                    _ => Next::Message,
                };
                Some(Parsed::Message(message))
            }),
            Next::Rect { remaining: 0 } => {
                next = Next::Message;
                Ok(None)
            }
            Next::Rect { remaining } => RectHeader::read(&mut r).map(|header| {
                let mut encoded = Vec::new();
                header.encode(&mut encoded);
                assert_eq!(encoded, offered[..r.consumed()], "{header:?} encodes to other bytes");
                next = Next::Pseudo { header, remaining: remaining - 1 };
                Some(Parsed::Rect(header))
            }),
            Next::Pseudo { header, .. } if header.has_pixel_data() => break,
            Next::Pseudo { header, remaining } => {
                PseudoRect::read(header.area, header.encoding, &mut r, pixels, limits).map(|rect| {
                    let remaining = if rect == PseudoRect::LastRect { 0 } else { remaining };
                    next = Next::Rect { remaining };
                    Some(Parsed::Pseudo(rect))
                })
            }
            Next::Skip { left } => {
                let n = left.min(offered.len() as u64);
                if n == 0 {
                    Err(ReadError::Incomplete)
                } else {
                    next = if n == left { Next::Message } else { Next::Skip { left: left - n } };
                    r.skip(n as usize).map(|()| None).map_err(ReadError::from)
                }
            }
        };
        match step {
            Ok(unit) => {
                start += r.consumed();
                units.extend(unit);
            }
            Err(ReadError::Incomplete) if end == stream.len() => break,
            Err(ReadError::Incomplete) => end = end.saturating_add(piece).min(stream.len()),
            Err(ReadError::Invalid(e)) => {
                units.push(Parsed::Failed(e));
                break;
            }
        }
    }
    (units, start)
}

/// The `server_messages` target: server messages and pseudo-rectangles through their typed parsers. The
/// first byte picks the pixel format (bits 0-2) and small limits (bit 3: 16 bytes of cut text, 64 x 64 pixels,
/// 4 KiB of cursor), the second the piece size; the rest is the server's stream after ServerInit. It is parsed
/// whole and in pieces, which must give the same units.
pub fn server_messages(mut data: &[u8]) {
    let options = byte(&mut data);
    let mut pixels = PixelReader::new(FORMATS[usize::from(options & 7)]);
    for (index, entry) in (0..256).zip(data.chunks_exact(3).take(16)) {
        pixels.set_colour(index, entry[0].into(), entry[1].into(), entry[2].into());
    }
    let limits = match options & 8 {
        0 => Limits::default(),
        _ => {
            Limits { max_cut_text: 16, max_framebuffer_pixels: 64 * 64, max_buffered_bytes: 4096, ..Limits::default() }
        }
    };
    let piece = piece_len(byte(&mut data));
    let whole = parse_server_stream(data, usize::MAX, &pixels, &limits);
    if piece != usize::MAX {
        let pieces = parse_server_stream(data, piece, &pixels, &limits);
        assert_eq!(whole, pieces, "the stream parsed differently in pieces of {piece}");
    }
}

/// How a decoder ended on the whole of its input.
#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    Done(usize),
    Incomplete,
    Failed,
}

/// Decodes `rect` from `input` as the session does, offering the bytes `piece` at a time.
fn run_decoder(
    encoding: i32,
    rect: &Rect,
    input: &[u8],
    piece: usize,
    pixels: &PixelReader,
    fb: &mut Framebuffer,
) -> Decoded {
    let limits = Limits::default();
    let mut streams = Streams::default();
    let mut scratch = Scratch::default();
    let mut decoder = Decoder::new(encoding).expect("a pixel encoding");
    let (mut start, mut end) = (0, piece.min(input.len()));
    loop {
        let offered = &input[start..end];
        let mut ctx = Ctx { pixels, fb: fb.canvas(), streams: &mut streams, limits: &limits, scratch: &mut scratch };
        match decoder.decode(rect, offered, &mut ctx) {
            Err(_) => return Decoded::Failed,
            Ok(Progress::Done(used)) => {
                assert!(used <= offered.len(), "decoder used {used} of {} bytes", offered.len());
                return Decoded::Done(start + used);
            }
            Ok(Progress::Partial(used)) => {
                assert!(used <= offered.len(), "decoder used {used} of {} bytes", offered.len());
                start += used;
                if used == 0 {
                    if end == input.len() {
                        return Decoded::Incomplete;
                    }
                    end = end.saturating_add(piece).min(input.len());
                }
            }
        }
    }
}

/// The `decoders` target: one rectangle of one encoding, straight into the decoder. The first byte picks
/// the encoding, the second the pixel format, the third the piece size, the next two the rectangle's size
/// (up to 128 x 128, at 3,2 in a framebuffer a little larger); the rest is the rectangle's data. It is decoded
/// whole and in pieces, which must give the same result.
pub fn decoders(mut data: &[u8]) {
    let encoding = PIXEL_ENCODINGS[usize::from(byte(&mut data)) % PIXEL_ENCODINGS.len()];
    let format = FORMATS[usize::from(byte(&mut data)) % FORMATS.len()];
    let piece = piece_len(byte(&mut data));
    let rect = Rect::new(3, 2, u16::from(byte(&mut data) % 129), u16::from(byte(&mut data) % 129));
    let mut pixels = PixelReader::new(format);
    for (index, entry) in (0..256).zip(data.chunks_exact(3).take(16)) {
        pixels.set_colour(index, entry[0].into(), entry[1].into(), entry[2].into());
    }
    let (width, height) = (rect.w + 5, rect.h + 4);
    let mut whole_fb = Framebuffer::new(width, height);
    let whole = run_decoder(encoding, &rect, data, usize::MAX, &pixels, &mut whole_fb);
    if piece != usize::MAX {
        let mut pieces_fb = Framebuffer::new(width, height);
        let pieces = run_decoder(encoding, &rect, data, piece, &pixels, &mut pieces_fb);
        assert_eq!(whole, pieces, "{} decoded differently in pieces of {piece}", enc::name(encoding));
        if matches!(whole, Decoded::Done(_)) {
            assert!(whole_fb.pixels() == pieces_fb.pixels(), "{} drew other pixels in pieces", enc::name(encoding));
        }
    }
}

/// The `soap_response` target: an HTTP status chosen by the first byte and a body, through the SOAP response
/// parser and every parser of a method response, the AcquireTicket one included.
pub fn soap_response(mut data: &[u8]) {
    use crate::vsphere::Ticket;
    let status = [200, 500, 404, 503][usize::from(byte(&mut data) & 3)];
    let body = String::from_utf8_lossy(data);
    let Ok(response) = crate::vsphere::fuzzing::parse_response(status, &body) else {
        return;
    };
    crate::vsphere::fuzzing::parse_method_response(&response);
    if let Ok(ticket) = Ticket::from_response(&response) {
        check_ticket(&ticket);
    }
}

fn check_ticket(ticket: &crate::vsphere::Ticket) {
    let url = ticket.wss_url("vcenter.example");
    let _ = crate::transport::host_and_port(&url);
    ticket.thumbprints();
    let shown = format!("{ticket:?}");
    assert!(!shown.contains(&format!("ticket: {:?}", ticket.ticket)), "Debug shows the ticket");
}

/// The `rest_response` target: a status from the first two bytes, the `/api` or `/rest` generation from the
/// third's lowest bit, and a body, through the REST answer parser (values and errors).
pub fn rest_response(mut data: &[u8]) {
    let status = u16::from_be_bytes([byte(&mut data), byte(&mut data)]) % 600;
    let rest = byte(&mut data) & 1 != 0;
    let _ = crate::vsphere::fuzzing::rest_answer(rest, status, data);
}

/// The `url` target: the text as a vSphere/webmks URL, a `wss://` ticket URL, and a ticket-hosts list.
pub fn url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::vsphere::parse_url(&text, Verification::Insecure);
    let _ = crate::webmks::Webmks::from_url(&text, Some("vm-1"), None, Verification::Insecure);
    let _ = crate::transport::host_and_port(&text);
    let _ = crate::transport::redact(&text);
    if let Ok(ticket) = crate::vsphere::fuzzing::ticket_from_url(&text) {
        check_ticket(&ticket);
    }
    let _ = crate::webmks::TicketHosts::parse(&text);
}

/// The `key_chord` target: the text as an os-autoinst key chord, and its characters as `type_string` maps
/// them; every keysym is looked up for its scancode.
pub fn key_chord(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(keysyms) = crate::keys::chord(&text) {
        for keysym in keysyms {
            crate::keys::scancode(keysym);
        }
    }
    for c in text.chars() {
        if let Some(name) = crate::keys::key_name_for_char(c) {
            let _ = crate::keys::chord(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// A target's name and its entry point.
    type Target = (&'static str, fn(&[u8]));

    /// Every seed (`fuzz/corpus/TARGET/`) and every input that once failed (`fuzz/regressions/TARGET/`),
    /// through its target: what libFuzzer starts from, and every fixed finding, pass in every test run.
    #[test]
    fn seeds_and_regressions_replay() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let targets: [Target; 10] = [
            ("handshake", super::handshake),
            ("session_stream", super::session_stream),
            ("vmw_messages", super::vmw_messages),
            ("client_messages", super::client_messages),
            ("server_messages", super::server_messages),
            ("decoders", super::decoders),
            ("soap_response", super::soap_response),
            ("rest_response", super::rest_response),
            ("url", super::url),
            ("key_chord", super::key_chord),
        ];
        for (target, run) in targets {
            let mut seeds = 0;
            for kind in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else { continue };
                for entry in entries {
                    let path = entry.unwrap().path();
                    run(&std::fs::read(&path).unwrap());
                    seeds += usize::from(kind == "corpus");
                }
            }
            assert!(seeds > 0, "fuzz/corpus/{target} has no seeds");
        }
    }
}
pub mod transport;
