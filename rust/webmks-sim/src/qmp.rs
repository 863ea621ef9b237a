//! A small client for QEMU's machine protocol (QMP) on a Unix socket: the greeting, capability negotiation, and
//! commands answered one at a time. Events that arrive meanwhile are skipped.
//!
//! A QMP socket serves one client at a time: hold a [`Qmp`] only as long as needed, or other users of the same
//! socket wait.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// The longest QMP message accepted (replies to the commands used here are tiny).
const MAX_MESSAGE: usize = 1 << 20;

/// One QMP connection, capabilities negotiated.
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// How long a command may take to be answered.
    timeout: Duration,
    next_id: u64,
}

impl Qmp {
    /// Connects to `path`, reads QEMU's greeting and leaves capability negotiation mode. `timeout` bounds that
    /// and, later, each command.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Qmp, String> {
        let stream = UnixStream::connect(path).await.map_err(|e| format!("QMP {}: {e}", path.display()))?;
        let (reader, writer) = stream.into_split();
        let mut qmp = Qmp { reader: BufReader::new(reader), writer, timeout, next_id: 0 };
        let greeting = tokio::time::timeout(timeout, qmp.message())
            .await
            .map_err(|_| format!("QMP {}: no greeting within {timeout:?}", path.display()))??;
        if greeting.get("QMP").is_none() {
            return Err(format!("QMP {}: unexpected greeting {greeting}", path.display()));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments` (a JSON object) and returns its `return` value. QEMU's errors come back
    /// as `QMP COMMAND: CLASS: DESCRIPTION`; the arguments are never part of an error (they may be passwords).
    pub async fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let timeout = self.timeout;
        let mut request = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let exchange = async {
            let mut line = request.to_string();
            line.push('\n');
            self.writer.write_all(line.as_bytes()).await.map_err(|e| format!("QMP {command}: {e}"))?;
            loop {
                let message = self.message().await.map_err(|e| format!("QMP {command}: {e}"))?;
                if message.get("id").and_then(Value::as_u64) != Some(id) {
                    continue;
                }
                if let Some(error) = message.get("error") {
                    let text = |field: &str| error.get(field).and_then(Value::as_str).unwrap_or("?").to_string();
                    return Err(format!("QMP {command}: {}: {}", text("class"), text("desc")));
                }
                return Ok(message.get("return").cloned().unwrap_or(Value::Null));
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("QMP {command}: no answer within {timeout:?}"))?
    }

    /// The next message QEMU sends.
    async fn message(&mut self) -> Result<Value, String> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut self.reader)
                .take(MAX_MESSAGE as u64)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| e.to_string())?;
            if n == MAX_MESSAGE && line.last() != Some(&b'\n') {
                return Err(format!("a QMP message longer than {MAX_MESSAGE} bytes"));
            }
            if line.last() != Some(&b'\n') {
                return Err("QEMU closed the connection".into());
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice(&line).map_err(|e| format!("invalid QMP message: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;
    use tokio::net::UnixListener;

    /// A fake QEMU: greets, then answers each request line with `reply(request)` (lines, joined with `\n`).
    async fn fake_qemu(reply: fn(&Value) -> String) -> (TempDir, tokio::task::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("qmp.sock")).unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (reader, mut writer) = stream.into_split();
            writer.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n").await.unwrap();
            let mut lines = BufReader::new(reader).lines();
            while let Some(line) = lines.next_line().await.unwrap() {
                let request: Value = serde_json::from_str(&line).unwrap();
                writer.write_all(format!("{}\r\n", reply(&request)).as_bytes()).await.unwrap();
            }
        });
        (dir, server)
    }

    fn echo_with_event(request: &Value) -> String {
        let id = &request["id"];
        let event = r#"{"event": "NIC_RX_FILTER_CHANGED", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}"#;
        format!("{event}\n{{\"return\": {{\"asked\": {}}}, \"id\": {id}}}", request["execute"])
    }

    #[tokio::test]
    async fn negotiates_and_skips_events() {
        let (dir, _server) = fake_qemu(echo_with_event).await;
        let mut qmp = Qmp::connect(&dir.path().join("qmp.sock"), Duration::from_secs(5)).await.unwrap();
        assert_eq!(qmp.execute("query-status", None).await.unwrap(), json!({"asked": "query-status"}));
        assert_eq!(qmp.next_id, 2, "qmp_capabilities went first");
    }

    #[tokio::test]
    async fn errors_carry_class_and_description_but_not_arguments() {
        let (dir, _server) = fake_qemu(|request| {
            let id = &request["id"];
            if request["execute"] == "qmp_capabilities" {
                return format!("{{\"return\": {{}}, \"id\": {id}}}");
            }
            format!(
                "{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"Could not set password\"}}, \"id\": {id}}}"
            )
        })
        .await;
        let mut qmp = Qmp::connect(&dir.path().join("qmp.sock"), Duration::from_secs(5)).await.unwrap();
        let err = qmp.execute("change-vnc-password", Some(json!({"password": "s3cr3t"}))).await.unwrap_err();
        assert_eq!(err, "QMP change-vnc-password: GenericError: Could not set password");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let _listener = UnixListener::bind(&path).unwrap();
        let err = Qmp::connect(&path, Duration::from_millis(200)).await.err().unwrap();
        assert!(err.ends_with("no greeting within 200ms"), "{err}");
    }
}
