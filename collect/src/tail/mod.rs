//! `collect tail`: follows JSON-lines logs and ships each line as an event.
//!
//! Rotation is followed both ways logrotate does it:
//! - **rename and create**: the path gets a new inode. The old file is read to its end
//!   (through the handle still open, or found again by inode in the same directory after a
//!   restart), then the new file from its start.
//! - **copytruncate**: the same inode shrinks below the read position; reading restarts at 0.
//!
//! The read position (device, inode, offset) is saved once what was read before it is in
//! Kafka or in the spool, so a restart neither skips lines nor, after a clean stop, sends
//! one twice. After a crash the lines since the last save are read again; their event ids
//! are derived from the file, offset and bytes, so the copies have the ids of the first
//! sending and the ingester and detector drop them.

pub mod formats;

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::formats::{LineMapper, LineOrigin, Mapped};
use super::sink::EventSink;

/// How often positions are saved while lines flow.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Lines read from one file before the others get their turn.
const LINES_PER_TURN: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the read position in {path} is damaged ({detail}); delete it to read the file from its start again")]
    BadState { path: String, detail: String },
    #[error(transparent)]
    Ship(#[from] super::shipper::ShipError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TailError + '_ {
    move |source| TailError::Io { path: path.display().to_string(), source }
}

/// Where reading stopped in one file, as saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    dev: u64,
    inode: u64,
    offset: u64,
}

impl Position {
    fn identity(&self) -> String {
        format!("{}:{}", self.dev, self.inode)
    }
}

/// Settings of one `collect tail` run.
#[derive(Clone, Debug)]
pub struct TailSettings {
    pub state_dir: PathBuf,
    pub poll: Duration,
    pub max_line_bytes: usize,
    /// For a file with no saved position: start at its end instead of its start.
    pub start_at_end: bool,
    /// Stop once every file is read to its end (backfills, benchmarks).
    pub once: bool,
}

/// Counts for the run summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TailSummary {
    pub lines: u64,
    pub events: u64,
    pub refused: u64,
    pub rotations: u64,
    pub truncations: u64,
}

/// One followed path.
struct Follower {
    path: PathBuf,
    state_file: PathBuf,
    /// The open file and where the next unread line starts.
    reader: Option<(BufReader<File>, Position)>,
    /// The last position whose lines are all shipped (saved at the next checkpoint).
    shipped: Option<Position>,
    saved: Option<Position>,
    /// Bytes of an over-long line still being skipped.
    skipping: bool,
    /// The last bytes before the read position. A copytruncate followed at once by new
    /// writes can grow the file past the position before the next poll; these bytes then
    /// differ, which tells the truncation apart from growth.
    mark: Vec<u8>,
}

/// Bytes kept in [`Follower::mark`].
const MARK_BYTES: usize = 64;

impl Follower {
    fn new(path: PathBuf, settings: &TailSettings) -> Result<Self, TailError> {
        let name = hex::encode(&Sha256::digest(path.as_os_str().as_encoded_bytes())[..8]);
        let state_file = settings.state_dir.join(format!("{name}.json"));
        let saved =
            match std::fs::read(&state_file) {
                Ok(bytes) => Some(serde_json::from_slice::<Position>(&bytes).map_err(|e| TailError::BadState {
                    path: state_file.display().to_string(),
                    detail: e.to_string(),
                })?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_error(&state_file)(e)),
            };
        let mut follower =
            Self { path, state_file, reader: None, shipped: saved, saved, skipping: false, mark: Vec::new() };
        follower.resume(saved, settings)?;
        Ok(follower)
    }

    /// Opens the file at the saved position: in the file now at the path when it is the
    /// same one, else in the rotated file with the saved inode (read to its end first).
    fn resume(&mut self, saved: Option<Position>, settings: &TailSettings) -> Result<(), TailError> {
        let Some(saved) = saved else {
            if let Some((file, mut position)) = open(&self.path)? {
                if settings.start_at_end {
                    position.offset = file.metadata().map_err(io_error(&self.path))?.len();
                }
                self.attach(file, position)?;
            }
            return Ok(());
        };
        let current = std::fs::metadata(&self.path).ok();
        if current.as_ref().is_some_and(|m| m.dev() == saved.dev && m.ino() == saved.inode) {
            if let Some((file, _)) = open(&self.path)? {
                let len = file.metadata().map_err(io_error(&self.path))?.len();
                let offset = if len < saved.offset { 0 } else { saved.offset };
                self.attach(file, Position { offset, ..saved })?;
            }
            return Ok(());
        }
        match find_rotated(&self.path, saved) {
            Some(rotated) => {
                tracing::info!(path = %self.path.display(), rotated = %rotated.display(), "finishing the file rotated while stopped");
                let file = File::open(&rotated).map_err(io_error(&rotated))?;
                self.attach(file, saved)?;
            }
            None => {
                tracing::warn!(path = %self.path.display(), "the file read last time is gone; starting the current one from its start");
                if let Some((file, position)) = open(&self.path)? {
                    self.attach(file, position)?;
                }
            }
        }
        Ok(())
    }

    fn attach(&mut self, file: File, position: Position) -> Result<(), TailError> {
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        reader.seek(SeekFrom::Start(position.offset)).map_err(io_error(&self.path))?;
        self.reader = Some((reader, position));
        self.skipping = false;
        self.mark = read_mark(self.reader.as_ref().map(|(r, _)| r.get_ref()), position.offset);
        Ok(())
    }

    /// Whether the file no longer holds the bytes read last before the position.
    fn overwritten(&self) -> bool {
        let Some((reader, position)) = &self.reader else { return false };
        if self.mark.is_empty() {
            return false;
        }
        read_mark(Some(reader.get_ref()), position.offset) != self.mark
    }

    /// Reads what is new, follows rotation; returns whether anything was read.
    fn poll(
        &mut self,
        mapper: &LineMapper,
        sink: &EventSink,
        settings: &TailSettings,
        summary: &mut TailSummary,
    ) -> Result<bool, TailError> {
        let same_file = match (&self.reader, std::fs::metadata(&self.path)) {
            (Some((_, p)), Ok(m)) => m.dev() == p.dev && m.ino() == p.inode,
            _ => false,
        };
        if same_file && self.overwritten() {
            self.truncated(summary)?;
        }
        let mut progressed = self.read_lines(mapper, sink, settings, summary, false)?;
        let current = std::fs::metadata(&self.path).ok();
        match (&mut self.reader, current) {
            (None, Some(_)) => {
                if let Some((file, position)) = open(&self.path)? {
                    self.attach(file, position)?;
                    progressed |= self.read_lines(mapper, sink, settings, summary, false)?;
                }
            }
            (Some((_, position)), Some(meta)) if meta.dev() != position.dev || meta.ino() != position.inode => {
                // Renamed away: what is left of the old file first, even a last line
                // without its newline, then the new file.
                self.read_lines(mapper, sink, settings, summary, true)?;
                summary.rotations += 1;
                metrics::counter!("mcpsiem_collect_tail_rotations_total").increment(1);
                tracing::info!(path = %self.path.display(), "the file was rotated; following the new one");
                self.reader = None;
                if let Some((file, position)) = open(&self.path)? {
                    self.attach(file, position)?;
                    self.read_lines(mapper, sink, settings, summary, false)?;
                }
                progressed = true;
            }
            (Some((_, position)), Some(meta)) if meta.len() < position.offset => {
                self.truncated(summary)?;
                self.read_lines(mapper, sink, settings, summary, false)?;
                progressed = true;
            }
            _ => {}
        }
        Ok(progressed)
    }

    fn truncated(&mut self, summary: &mut TailSummary) -> Result<(), TailError> {
        let Some((reader, position)) = self.reader.as_mut() else { return Ok(()) };
        summary.truncations += 1;
        metrics::counter!("mcpsiem_collect_tail_truncations_total").increment(1);
        tracing::info!(path = %self.path.display(), "the file was truncated (copytruncate); reading it from its start");
        position.offset = 0;
        reader.seek(SeekFrom::Start(0)).map_err(io_error(&self.path))?;
        self.skipping = false;
        self.mark.clear();
        Ok(())
    }

    /// Ships every complete line from the position on. `to_end`: also a last line without
    /// its newline (the file will not grow any more).
    fn read_lines(
        &mut self,
        mapper: &LineMapper,
        sink: &EventSink,
        settings: &TailSettings,
        summary: &mut TailSummary,
        to_end: bool,
    ) -> Result<bool, TailError> {
        let Some((reader, position)) = self.reader.as_mut() else { return Ok(false) };
        let identity = position.identity();
        let mut line = Vec::with_capacity(1024);
        let mut read_any = false;
        let mut lines = 0u64;
        for _ in 0..LINES_PER_TURN {
            line.clear();
            let limit = settings.max_line_bytes as u64 + 1;
            let n =
                std::io::Read::take(&mut *reader, limit).read_until(b'\n', &mut line).map_err(io_error(&self.path))?;
            if n == 0 {
                break;
            }
            let complete = line.last() == Some(&b'\n');
            if !complete && (line.len() as u64) < limit && !to_end {
                // A line still being written: read it whole next time.
                reader.seek_relative(-(n as i64)).map_err(io_error(&self.path))?;
                break;
            }
            let start = position.offset;
            position.offset += n as u64;
            read_any = true;
            if self.skipping {
                self.skipping = !complete;
                continue;
            }
            if !complete && !to_end {
                // Longer than max_line_bytes: recorded as too large, the rest skipped.
                self.skipping = true;
            }
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            if body.trim_ascii().is_empty() {
                continue;
            }
            summary.lines += 1;
            lines += 1;
            let origin = LineOrigin { file_identity: &identity, offset: start };
            let mapped = if self.skipping {
                mapper.map(&body[..body.len().min(512)], &origin)
            } else {
                mapper.map(body, &origin)
            };
            let shipped = match mapped {
                Mapped::Verbatim { key, line } if !self.skipping => {
                    sink.shipper().send(key.as_deref(), &line).map(|()| 1).map_err(TailError::from)
                }
                Mapped::Verbatim { .. } => Ok(0),
                Mapped::Event(mut event) => {
                    if self.skipping {
                        event.kind = mcpsiem_event::EventKind::Malformed;
                        event.error_type = Some("too_large".into());
                        event.error_message =
                            Some(format!("a line longer than {} bytes", settings.max_line_bytes).into());
                    }
                    sink.send(&event).map(|()| 1).map_err(TailError::from)
                }
            };
            match shipped {
                Ok(n) => summary.events += n,
                Err(error) => {
                    // Full spool: stop here and read this line again later, rather than lose it.
                    summary.refused += 1;
                    position.offset = start;
                    reader.seek(SeekFrom::Start(start)).map_err(io_error(&self.path))?;
                    tracing::error!(%error, path = %self.path.display(), "cannot ship; pausing this file");
                    break;
                }
            }
        }
        metrics::counter!("mcpsiem_collect_tail_lines_total").increment(lines);
        self.shipped = Some(*position);
        if read_any {
            self.mark = read_mark(Some(reader.get_ref()), position.offset);
        }
        Ok(read_any)
    }

    /// Saves the position of what is shipped, once it changed.
    fn save(&mut self) -> Result<(), TailError> {
        let Some(position) = self.shipped else { return Ok(()) };
        if self.saved == Some(position) {
            return Ok(());
        }
        let tmp = self.state_file.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&position).expect("a position serializes");
        std::fs::write(&tmp, bytes).map_err(io_error(&tmp))?;
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, &self.state_file).map_err(io_error(&self.state_file))?;
        self.saved = Some(position);
        Ok(())
    }
}

/// Up to [`MARK_BYTES`] bytes of `file` before `offset`.
fn read_mark(file: Option<&File>, offset: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let Some(file) = file else { return Vec::new() };
    let len = (offset as usize).min(MARK_BYTES);
    let mut mark = vec![0u8; len];
    match file.read_exact_at(&mut mark, offset - len as u64) {
        Ok(()) => mark,
        Err(_) => Vec::new(),
    }
}

fn open(path: &Path) -> Result<Option<(File, Position)>, TailError> {
    match File::open(path) {
        Ok(file) => {
            let meta = file.metadata().map_err(io_error(path))?;
            Ok(Some((file, Position { dev: meta.dev(), inode: meta.ino(), offset: 0 })))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// A file in the same directory with the saved inode: where a rotation moved it.
fn find_rotated(path: &Path, saved: Position) -> Option<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::read_dir(dir).ok()?.filter_map(Result::ok).map(|entry| entry.path()).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.dev() == saved.dev && m.ino() == saved.inode)
    })
}

/// The tailer as a collector: `collect tail PATH…`, until a stop is requested (or, with
/// `once`, until every file is read to its end).
pub struct TailCollector {
    pub paths: Vec<PathBuf>,
    pub mapper: LineMapper,
    pub settings: TailSettings,
}

impl crate::harness::Collector for TailCollector {
    type Summary = TailSummary;
    type Error = TailError;

    fn running(&self) -> crate::harness::Running {
        crate::harness::Running { worker_threads: 1, ..Default::default() }
    }

    async fn run(self, context: crate::harness::Context) -> Result<TailSummary, TailError> {
        let stop = mcpsiem_runtime::stop::stop_on_signal(&context.runtime);
        tracing::info!(files = self.paths.len(), format = ?self.mapper.format, "following");
        // The files are read with blocking calls, off the runtime's threads.
        tokio::task::spawn_blocking(move || run(&self.paths, &self.mapper, &context.sink, &self.settings, stop))
            .await
            .map_err(|e| TailError::Io { path: "the tailer thread".into(), source: std::io::Error::other(e) })?
    }
}

/// Follows `paths` until `stop` is set, then ships what was read and saves positions.
pub fn run(
    paths: &[PathBuf],
    mapper: &LineMapper,
    sink: &EventSink,
    settings: &TailSettings,
    stop: Arc<AtomicBool>,
) -> Result<TailSummary, TailError> {
    std::fs::create_dir_all(&settings.state_dir).map_err(io_error(&settings.state_dir))?;
    let mut followers = paths.iter().map(|p| Follower::new(p.clone(), settings)).collect::<Result<Vec<_>, _>>()?;
    let mut summary = TailSummary::default();
    let mut last_checkpoint = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let mut progressed = false;
        for follower in &mut followers {
            progressed |= follower.poll(mapper, sink, settings, &mut summary)?;
        }
        if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            // Every line read so far is synced in the spool: the positions may move past them.
            sink.shipper().flush()?;
            for follower in &mut followers {
                follower.save()?;
            }
            last_checkpoint = Instant::now();
        }
        if !progressed {
            if settings.once {
                break;
            }
            std::thread::sleep(settings.poll);
        }
    }
    // Everything read is in Kafka or in the spool once close returns without error.
    let left = sink.close(Duration::from_secs(15))?;
    if left > 0 {
        tracing::warn!(left, "Kafka did not take every event in time: they stay in the spool for the next run");
    }
    for follower in &mut followers {
        follower.save()?;
    }
    Ok(summary)
}
