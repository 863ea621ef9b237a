//! The VNC client behind a console: one TCP connection to the real VNC server (QEMU) per webmks connection,
//! driven by nativevnc's sans-I/O [`Session`]. It keeps a current copy of the screen and the area changed
//! since the webmks side last looked.

use std::time::Duration;

use nativevnc::config::Config;
use nativevnc::encoding as enc;
use nativevnc::framebuffer::{Framebuffer, Rect};
use nativevnc::handshake::Credentials;
use nativevnc::messages::ClientMessage;
use nativevnc::pixel::PixelFormat;
use nativevnc::session::{Event, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What changed on the VNC server's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// An update finished; its damage is in [`Backend::take_damage`].
    Update,
    Resized,
    /// QEMU's LED state (bit 0 Scroll, 1 Num, 2 Caps).
    Leds(u8),
}

pub struct Backend {
    stream: TcpStream,
    session: Session,
    buf: Box<[u8]>,
    leds: Option<u8>,
}

impl Backend {
    /// The configuration: B,G,R,X pixels; ZRLE, Raw, DesktopSize, QEMU LED state and extended key events.
    fn config() -> Config {
        Config {
            encodings: vec![enc::ZRLE, enc::RAW, enc::DESKTOP_SIZE, enc::QEMU_LED_STATE, enc::QEMU_EXT_KEY_EVENT],
            pixel_format: Some(PixelFormat::BGRX),
            ..Config::default()
        }
    }

    /// Runs the RFB handshake on a connected stream and asks for the whole screen.
    pub async fn start(stream: TcpStream, password: Option<String>, timeout: Duration) -> Result<Backend, String> {
        let mut b = Backend {
            stream,
            session: Session::new(Self::config(), Credentials::new(password)),
            buf: vec![0; 256 << 10].into_boxed_slice(),
            leds: None,
        };
        let handshake = async {
            while !b.session.is_open() {
                b.flush().await.map_err(|e| format!("writing to the VNC server: {e}"))?;
                let n = b.read().await.map_err(|e| format!("reading from the VNC server: {e}"))?;
                if n == 0 {
                    return Err("the VNC server closed the connection during the handshake".to_string());
                }
                b.absorb(n)?;
            }
            b.session.request_update(false);
            b.flush().await.map_err(|e| format!("writing to the VNC server: {e}"))
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| format!("no RFB handshake with the VNC server within {timeout:?}"))??;
        Ok(b)
    }

    /// Reads what the server sent (cancel-safe); 0 means it closed the connection. Pass the count to
    /// [`Self::absorb`].
    pub async fn read(&mut self) -> std::io::Result<usize> {
        self.stream.read(&mut self.buf).await
    }

    /// Processes `n` bytes just read; asks for the next incremental update after each one.
    pub fn absorb(&mut self, n: usize) -> Result<Vec<Change>, String> {
        self.session.input().extend_from_slice(&self.buf[..n]);
        self.session.process().map_err(|e| format!("VNC server: {e}"))?;
        let mut changes = Vec::new();
        while let Some(event) = self.session.next_event() {
            match event {
                Event::Update => {
                    self.session.request_update(true);
                    changes.push(Change::Update);
                }
                Event::Resized { .. } => changes.push(Change::Resized),
                Event::LedState(l) => {
                    self.leds = Some(l);
                    changes.push(Change::Leds(l));
                }
                _ => {}
            }
        }
        Ok(changes)
    }

    /// Writes out what the session queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.session.has_output() {
            let out = self.session.take_output();
            self.stream.write_all(&out).await?;
        }
        Ok(())
    }

    /// Queues a client message (written by the next [`Self::flush`]).
    pub fn send(&mut self, msg: &ClientMessage) {
        self.session.send(msg);
    }

    /// Whether the server takes QEMU extended key events (it announced -258).
    pub fn ext_keys(&self) -> bool {
        self.session.uses_ext_key_events()
    }

    pub fn leds(&self) -> Option<u8> {
        self.leds
    }

    /// Whether the VNC server has sent pixels yet (the framebuffer is black before).
    pub fn has_screen(&self) -> bool {
        self.session.counters().pixel_updates > 0
    }

    pub fn framebuffer(&self) -> &Framebuffer {
        self.session.framebuffer().expect("the backend session is open after start")
    }

    pub fn name(&self) -> &str {
        self.session.server_init().map(|i| i.name.as_str()).unwrap_or_default()
    }

    pub fn take_damage(&mut self) -> Vec<Rect> {
        self.session.take_damage()
    }
}
