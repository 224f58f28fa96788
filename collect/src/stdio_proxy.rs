//! `collect proxy --stdio`: sits between an MCP client and a stdio MCP server.
//!
//! Every byte passes through unchanged and at once in both directions. A copy of each
//! complete newline-delimited message is queued for the observer task (which turns it into
//! events and ships them) and the bytes are written on; the observer never parses on the
//! forwarding path, so a message it cannot parse, or a slow Kafka, never changes the
//! traffic or holds it up (the queue is bounded only to cap memory under a burst).

use std::process::Stdio;

use mcpsiem_event::{Direction, OwnedEvent};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::observer::Observer;
use super::sink::EventSink;

const READ_BUFFER: usize = 64 * 1024;
/// Messages waiting for the observer: past it, the pumps wait (the observer is far faster
/// than a pipe, so this only bounds memory under a burst).
const OBSERVE_QUEUE: usize = 4096;

/// A copy of one message for the observer.
enum Observed {
    Message(Direction, Vec<u8>),
    /// A message longer than the inspection limit: its size and first bytes.
    Oversize(Direction, usize, Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum StdioProxyError {
    #[error("no MCP server command given: use `mcpsiem collect proxy --stdio -- COMMAND [ARGS…]`")]
    NoCommand,
    #[error("cannot start the MCP server `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("waiting for the MCP server failed: {0}")]
    Wait(std::io::Error),
}

/// What the proxy did, for its exit log line.
#[derive(Debug, Default)]
pub struct ProxySummary {
    pub exit_code: i32,
    pub messages: u64,
    pub events: u64,
    pub refused: u64,
}

/// The stdio proxy as a collector: `collect proxy --stdio -- COMMAND…`.
pub struct StdioProxyCollector {
    pub command: Vec<String>,
    pub observer: Observer,
    /// Largest message the proxy inspects (it forwards larger ones all the same).
    pub max_message_bytes: usize,
}

impl crate::harness::Collector for StdioProxyCollector {
    type Summary = ProxySummary;
    type Error = StdioProxyError;

    fn running(&self) -> crate::harness::Running {
        crate::harness::Running {
            // Its client waits for it to exit, so the stop keeps less time for Kafka.
            close_timeout: std::time::Duration::from_secs(3),
            // One per MCP client session, many at once on one host.
            free_spool_slot: true,
            // The client's stdin may still be open (the server exited first): its blocking
            // read must not keep the process alive.
            shutdown_background: true,
            ..Default::default()
        }
    }

    async fn run(self, context: crate::harness::Context) -> Result<ProxySummary, StdioProxyError> {
        // Stdio events have no session, token or address: one key per connection keeps
        // them in one partition, in order.
        let sink = context.sink.with_fallback_key(format!("stdio-{}", ulid::Ulid::new()));
        run(&self.command, self.observer, sink, self.max_message_bytes).await
    }
}

/// Runs `command` as the MCP server behind this process's stdin and stdout until either
/// side closes; returns the server's exit code to pass on.
pub async fn run(
    command: &[String],
    observer: Observer,
    sink: EventSink,
    max_message_bytes: usize,
) -> Result<ProxySummary, StdioProxyError> {
    let (program, args) = command.split_first().ok_or(StdioProxyError::NoCommand)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StdioProxyError::Spawn { command: command.join(" "), source })?;
    let child_in = child.stdin.take().expect("stdin is piped");
    let child_out = child.stdout.take().expect("stdout is piped");

    let (tx, rx) = mpsc::channel(OBSERVE_QUEUE);
    let observing = tokio::spawn(observe(rx, observer, sink));
    let to_server =
        tokio::spawn(pump(client_input(), child_in, Direction::ClientToServer, tx.clone(), max_message_bytes));
    let to_client = tokio::spawn(pump(child_out, client_output(), Direction::ServerToClient, tx, max_message_bytes));

    let status = tokio::select! {
        status = child.wait() => status,
        _ = mcpsiem_runtime::stop::shutdown_signal() => {
            tracing::info!("stop requested: stopping the MCP server");
            let _ = child.start_kill();
            child.wait().await
        }
    }
    .map_err(StdioProxyError::Wait)?;
    // The server is gone: what it wrote is read to the end; the client's side stops.
    let _ = to_client.await;
    to_server.abort();
    let _ = to_server.await;
    let mut summary = observing.await.unwrap_or_default();
    summary.exit_code = status.code().unwrap_or(1);
    Ok(summary)
}

/// This process's stdin. MCP clients connect stdio servers with pipes, which are read
/// through epoll; Tokio's general stdin goes through a blocking thread per read, which adds
/// milliseconds at the tail. Anything else (a terminal, a file) falls back to it.
fn client_input() -> Box<dyn AsyncRead + Unpin + Send> {
    use std::os::fd::AsFd;
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| tokio::net::unix::pipe::Receiver::from_file(std::fs::File::from(fd)));
    match pipe {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// This process's stdout, as a pipe when it is one (see [`client_input`]).
fn client_output() -> Box<dyn AsyncWrite + Unpin + Send> {
    use std::os::fd::AsFd;
    let pipe = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| tokio::net::unix::pipe::Sender::from_file(std::fs::File::from(fd)));
    match pipe {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

/// Copies `from` to `to` as it arrives, and hands a copy of each line to the observer.
async fn pump<R, W>(mut from: R, mut to: W, direction: Direction, tx: mpsc::Sender<Observed>, max: usize)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut line = LineSplitter::new(max);
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, ?direction, "reading the stream failed; closing it");
                break;
            }
        };
        // The copy goes to the observer before the bytes go on: a request must be queued
        // before the server can answer it, or the answer (read by the other pump) could be
        // observed first and the pair never matched.
        for observed in line.push(direction, &buffer[..n]) {
            if tx.send(observed).await.is_err() {
                return;
            }
        }
        if let Err(e) = async {
            to.write_all(&buffer[..n]).await?;
            to.flush().await
        }
        .await
        {
            tracing::warn!(error = %e, ?direction, "the other side closed; stopping this direction");
            break;
        }
    }
    if let Some(observed) = line.finish(direction) {
        let _ = tx.send(observed).await;
    }
    let _ = to.shutdown().await;
}

async fn observe(mut rx: mpsc::Receiver<Observed>, mut observer: Observer, sink: EventSink) -> ProxySummary {
    let mut summary = ProxySummary::default();
    let mut events: Vec<OwnedEvent> = Vec::new();
    while let Some(observed) = rx.recv().await {
        summary.messages += 1;
        match observed {
            Observed::Message(direction, bytes) => observer.observe(direction, &bytes, &mut events),
            Observed::Oversize(direction, size, head) => observer.observe_oversize(direction, size, &head, &mut events),
        }
        summary.refused += sink.send_all(&events) as u64;
        summary.events += events.len() as u64;
        events.clear();
    }
    observer.finish(&mut events);
    summary.refused += sink.send_all(&events) as u64;
    summary.events += events.len() as u64;
    summary
}

/// Splits a byte stream into newline-delimited messages (the stdio transport's framing),
/// keeping at most `max` bytes of one message.
pub(crate) struct LineSplitter {
    max: usize,
    current: Vec<u8>,
    /// Bytes of the current message beyond what is kept.
    dropped: usize,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> Self {
        Self { max, current: Vec::new(), dropped: 0 }
    }

    fn push(&mut self, direction: Direction, mut bytes: &[u8]) -> Vec<Observed> {
        let mut out = Vec::new();
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.keep(&bytes[..end]);
            out.push(self.take(direction));
            bytes = &bytes[end + 1..];
        }
        self.keep(bytes);
        out
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.current.len());
        let kept = bytes.len().min(room);
        self.current.extend_from_slice(&bytes[..kept]);
        self.dropped += bytes.len() - kept;
    }

    fn take(&mut self, direction: Direction) -> Observed {
        let bytes = std::mem::take(&mut self.current);
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            let size = bytes.len() + dropped;
            Observed::Oversize(direction, size, bytes[..bytes.len().min(512)].to_vec())
        } else {
            Observed::Message(direction, bytes)
        }
    }

    fn finish(&mut self, direction: Direction) -> Option<Observed> {
        (!self.current.is_empty() && !self.current.trim_ascii().is_empty()).then(|| self.take(direction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_and_oversize_ones_are_flagged() {
        let mut s = LineSplitter::new(10);
        let d = Direction::ClientToServer;
        assert!(s.push(d, b"{\"a\"").is_empty());
        let out = s.push(d, b":1}\n{\"b\":2}\n0123456789abc");
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], Observed::Message(_, m) if m == b"{\"a\":1}"));
        let out = s.push(d, b"def\nx");
        assert!(matches!(&out[0], Observed::Oversize(_, 16, head) if head == b"0123456789"));
        assert!(matches!(s.finish(d), Some(Observed::Message(_, m)) if m == b"x"));
        assert!(s.finish(d).is_none());
    }
}
