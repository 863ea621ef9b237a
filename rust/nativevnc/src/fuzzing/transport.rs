//! Entry points of the transport's fuzz targets: the WebSocket reading half fed arbitrary server frames, and
//! the `vnc://` URL parser. Like the rest of [`crate::fuzzing`], built only with `--cfg fuzzing` and for tests.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{byte, piece_len};
use crate::error::{Error, ErrorKind};
use crate::transport::{host_port, websocket as ws, VncUrl};

/// How the model expects the server's frames to end the stream of messages.
#[derive(Debug, PartialEq)]
enum End {
    /// A frame or a reassembled message over the maximum: the error must say so.
    TooLarge,
    /// Anything else: a close frame, a protocol error, a text message, the end of the stream.
    Other,
}

/// The server's side of a WebSocket after the handshake, and what a correct client makes of it.
struct Frames {
    wire: Vec<u8>,
    /// The payloads of the non-empty binary messages before the stream ends, reassembled.
    messages: Vec<Vec<u8>>,
    end: End,
}

/// Builds frames from `data`, a series of `HEAD LEN [SHIFT] PAYLOAD` records. HEAD's low 4 bits are the
/// opcode, then FIN, MASK and RSV1; its top bit writes the length in the 64-bit form as `LEN << 8 * SHIFT`
/// (so that frames far over the limit are claimed), else in the shortest form. The payload is the next LEN
/// bytes of the input, or what is left of it. Follows RFC 6455 as a client must (as tungstenite does) to know
/// which binary messages arrive before the stream ends, and how it ends.
fn frames(mut data: &[u8], max_message: usize) -> Frames {
    let (mut wire, mut messages) = (Vec::new(), Vec::new());
    let mut fragments: Option<Vec<u8>> = None;
    let mut end = None;
    while data.len() >= 2 {
        let head = byte(&mut data);
        let len_byte = byte(&mut data);
        let (opcode, fin, masked, rsv) = (head & 0x0f, head & 0x10 != 0, head & 0x20 != 0, head & 0x40 != 0);
        let long = head & 0x80 != 0;
        let len = if long { u64::from(len_byte) << (8 * (byte(&mut data) & 7)) } else { u64::from(len_byte) };
        let taken = data.len().min(usize::try_from(len).unwrap_or(usize::MAX));
        let (payload, rest) = data.split_at(taken);
        data = rest;

        wire.push(u8::from(fin) << 7 | u8::from(rsv) << 6 | opcode);
        let mask_bit = u8::from(masked) << 7;
        match len {
            _ if long => {
                wire.push(mask_bit | 127);
                wire.extend_from_slice(&len.to_be_bytes());
            }
            0..=125 => wire.push(mask_bit | len as u8),
            _ => {
                wire.push(mask_bit | 126);
                wire.extend_from_slice(&(len as u16).to_be_bytes());
            }
        }
        let key = [head, len_byte, 0x5a, 0xa5];
        if masked {
            wire.extend_from_slice(&key);
        }
        wire.extend(payload.iter().enumerate().map(|(i, b)| if masked { b ^ key[i % 4] } else { *b }));

        if end.is_some() {
            continue;
        }
        // A reserved opcode fails the header, before its length is looked at.
        end = if matches!(opcode, 3..=7 | 11..) {
            Some(End::Other)
        } else if len > max_message as u64 {
            Some(End::TooLarge)
        } else if (payload.len() as u64) < len || rsv || masked {
            Some(End::Other)
        } else {
            match (opcode, fragments.as_mut()) {
                // Ping and pong, whole and short, anywhere; a close frame ends the stream.
                (9 | 10, _) if fin && payload.len() <= 125 => None,
                (8.., _) => Some(End::Other),
                (0, Some(message)) if message.len() + payload.len() > max_message => Some(End::TooLarge),
                (0, Some(message)) => {
                    message.extend_from_slice(payload);
                    if fin {
                        messages.extend(fragments.take().filter(|m| !m.is_empty()));
                    }
                    None
                }
                (2, None) if fin => {
                    messages.extend((!payload.is_empty()).then(|| payload.to_vec()));
                    None
                }
                (2, None) => {
                    fragments = Some(payload.to_vec());
                    None
                }
                // A continuation without a start, a new message inside one, a text message (the session wants
                // none).
                _ => Some(End::Other),
            }
        };
    }
    wire.extend_from_slice(data);
    Frames { wire, messages, end: end.unwrap_or(End::Other) }
}

/// The `websocket` target: a WebSocket after a completed client handshake, fed frames built from the input
/// (see [`frames`]) in pieces. The first byte picks the maximum message size (16 bytes to 2 KiB) and the
/// piece size. The session must get exactly the payloads of the binary messages, each whole, and an error
/// that names an oversize message when one ends the stream.
pub fn websocket(mut data: &[u8]) {
    let options = byte(&mut data);
    let max_message = 16 << (options & 7);
    let piece = piece_len(options >> 3);
    let expected = frames(data, max_message);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime");
    let (delivered, error) = runtime.block_on(async {
        let (client, server) = tokio::io::duplex(4096);
        let (client, ()) = tokio::join!(read_messages(client, max_message), serve(server, &expected.wire, piece));
        client
    });
    assert!(delivered.iter().all(|m| m.len() <= max_message), "a message over {max_message} bytes was delivered");
    assert_eq!(delivered, expected.messages, "the session got other bytes than the binary messages carried");
    if expected.end == End::TooLarge {
        assert!(error.message().contains("too large"), "an oversize message ended the stream with: {error}");
    }
}

/// The client: the handshake, then every message until the stream ends; the messages and the error.
async fn read_messages(stream: DuplexStream, max_message: usize) -> (Vec<Vec<u8>>, Error) {
    let url = "wss://esx.example/ticket/fuzz";
    let (mut reader, _writer) = match ws::open(url, "wss://esx.example:443/…", stream, max_message).await {
        Ok(halves) => halves,
        Err(e) => panic!("the WebSocket handshake failed: {e}"),
    };
    let mut messages = Vec::new();
    loop {
        let mut buf = Vec::new();
        match reader.read_into(&mut buf).await {
            Ok(n) => {
                assert_eq!(n, buf.len(), "read_into counted {n} of {} bytes", buf.len());
                messages.push(buf);
            }
            Err(e) => return (messages, e),
        }
    }
}

/// The server: answers the handshake (subprotocol `binary`), sends `wire` in pieces of `piece` bytes, ends its
/// side and reads whatever the client sends (pongs, a close) until the client is gone.
async fn serve(mut stream: DuplexStream, wire: &[u8], piece: usize) {
    let mut request = Vec::new();
    while !request.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).await.expect("the client's handshake request");
        request.push(byte[0]);
    }
    let request = String::from_utf8(request).expect("the handshake request is text");
    let key = request
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, value)| value.trim())
        .expect("the request has a Sec-WebSocket-Key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(response.as_bytes()).await.expect("the handshake response");
    for chunk in wire.chunks(piece.min(wire.len()).max(1)) {
        // The client stops reading at the first error: the rest is not for it.
        if stream.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = stream.shutdown().await;
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink).await;
}

/// The `vnc_url` target: the text as the CLI's `--url` for a VNC server. Errors are usage errors that show
/// neither the password nor the user name; a URL that parses reads back the same from `vnc://` written
/// anew, and its `Debug` hides the password.
pub fn vnc_url(data: &[u8]) {
    const MARKER: &str = "Zq9MarkerSecret";
    let text = String::from_utf8_lossy(data);
    let parsed = VncUrl::parse(&text);
    if let Err(e) = &parsed {
        assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    }
    // The same URL with a recognisable password and user name: no error may show them.
    if let Ok(mut url) = url::Url::parse(&text) {
        let user = !url.username().is_empty() && url.set_username(MARKER).is_ok();
        let password = url.password().is_some() && url.set_password(Some(MARKER)).is_ok();
        if user || password {
            if let Err(e) = VncUrl::parse(url.as_str()) {
                assert!(!e.message().contains(MARKER), "an error shows a credential: {e}");
            }
        }
    }
    let Ok(vnc) = parsed else { return };
    assert!(!vnc.host.is_empty() && !vnc.host.starts_with('['), "host {:?}", vnc.host);
    let address = host_port(&vnc.host, vnc.port);
    let written = match &vnc.password {
        Some(password) => format!("vnc://:{}@{address}", utf8_percent_encode(password, NON_ALPHANUMERIC)),
        None => format!("vnc://{address}"),
    };
    assert_eq!(VncUrl::parse(&written).as_ref(), Ok(&vnc), "{written} reads back differently");
    let hidden = VncUrl { password: Some(MARKER.to_owned()), ..vnc };
    assert!(!format!("{hidden:?}").contains(MARKER), "Debug shows the password");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every seed and regression input of the transport's targets, through its target (as
    /// `crate::fuzzing`'s test does for the others).
    #[test]
    fn seeds_and_regressions_replay() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let targets = [("websocket", super::websocket as fn(&[u8])), ("vnc_url", super::vnc_url)];
        for (target, run) in targets {
            let mut seeds = 0;
            for kind in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else { continue };
                for entry in entries {
                    run(&std::fs::read(entry.unwrap().path()).unwrap());
                    seeds += usize::from(kind == "corpus");
                }
            }
            assert!(seeds > 0, "fuzz/corpus/{target} has no seeds");
        }
    }

    /// The model against hand-made streams: fragments with a ping between them, then a close.
    #[test]
    fn frames_model_reassembly_and_the_limit() {
        // Binary "ab" (not final), ping "p", continuation "cd" (final), close.
        let input = [0x02, 2, b'a', b'b', 0x19, 1, b'p', 0x10, 2, b'c', b'd', 0x18, 0];
        let f = super::frames(&input, 16);
        assert_eq!(f.wire, [0x02, 2, b'a', b'b', 0x89, 1, b'p', 0x80, 2, b'c', b'd', 0x88, 0]);
        assert_eq!((f.messages, f.end), (vec![b"abcd".to_vec()], super::End::Other));
        // 17 bytes in two fragments against a limit of 16.
        let mut input = vec![0x02, 9];
        input.extend_from_slice(&[1; 9]);
        input.extend_from_slice(&[0x10, 8]);
        input.extend_from_slice(&[2; 8]);
        let f = super::frames(&input, 16);
        assert_eq!((f.messages.len(), f.end), (0, super::End::TooLarge));
        super::websocket(&[0].iter().chain(&input).copied().collect::<Vec<u8>>());
    }
}
