//! The collector's disk spool: where events wait while Kafka is unreachable, in order, and
//! survive a restart of the collector. Records are appended to segment files and read back
//! from a cursor that only moves once Kafka has acknowledged them; a full spool refuses
//! new records with an error instead of dropping anything.
//!
//! A record on disk: `len: u32 LE` (of what follows, checksum excluded), `key_len: u32 LE`,
//! key bytes, payload bytes, `crc32: u32 LE` of key and payload. A record cut short by a
//! crash (a torn tail) is dropped when the spool opens; nothing before it is lost.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Segments roll at this size, so acknowledged ones can be deleted whole.
const SEGMENT_BYTES: u64 = 64 << 20;
const CURSOR_FILE: &str = "cursor";
const LOCK_FILE: &str = "lock";
const SEGMENT_SUFFIX: &str = ".spool";
/// The write buffer of the open segment: with the drain's sync interval, the bound on what
/// a SIGKILL of a proxy or the tailer can lose (docs/collect.md).
pub const WRITE_BUFFER_BYTES: usize = 8 << 10;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "the spool in {dir} is full ({used} of {limit} bytes): Kafka has been unreachable for too long; \
         the record was not accepted (raise collect.spool_max_bytes or restore Kafka)"
    )]
    Full { dir: String, used: u64, limit: u64 },
    #[error("the spool in {dir} cannot be used: {source}")]
    Io { dir: String, source: io::Error },
    #[error("the spool in {dir} is damaged: {detail}; move it away to start a new one (its records would be lost)")]
    Damaged { dir: String, detail: String },
    #[error("the spool in {dir} is in use by another collector process (give each its own collect.spool_dir)")]
    Busy { dir: String },
}

/// One spooled record and its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpooledRecord {
    pub seq: u64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// A segment file: the sequence number of its first record, and where it is.
#[derive(Clone, Debug)]
struct Segment {
    first_seq: u64,
    records: u64,
    bytes: u64,
    path: PathBuf,
}

/// The spool of one collector.
pub struct Spool {
    dir: PathBuf,
    limit: u64,
    segments: Vec<Segment>,
    /// Appends go here (the last segment).
    writer: Option<BufWriter<File>>,
    /// The next record to hand to Kafka.
    cursor: u64,
    /// Where the last read stopped, so the next one can seek there.
    read_position: Option<ReadPosition>,
    /// Appended records not yet synced to disk.
    dirty: bool,
    /// Held open with an exclusive lock for the spool's life: two writers would interleave
    /// records and move each other's cursor.
    _lock: File,
}

/// The record `seq` starts at byte `offset` of the segment at `path`.
struct ReadPosition {
    path: PathBuf,
    seq: u64,
    offset: u64,
}

/// Bytes one record takes on disk.
pub fn record_size(key: Option<&[u8]>, payload: &[u8]) -> u64 {
    12 + key.map_or(0, |k| k.len() as u64) + payload.len() as u64
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, holding at most `limit` bytes on disk.
    pub fn open(dir: &Path, limit: u64) -> Result<Self, SpoolError> {
        let io_error = |source| SpoolError::Io { dir: dir.display().to_string(), source };
        fs::create_dir_all(dir).map_err(io_error)?;
        let lock = File::create(dir.join(LOCK_FILE)).map_err(io_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Busy { dir: dir.display().to_string() }),
            Err(fs::TryLockError::Error(e)) => return Err(io_error(e)),
        }
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error)? {
            let path = entry.map_err(io_error)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(first) = name.strip_suffix(SEGMENT_SUFFIX).and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            segments.push(Segment { first_seq: first, records: 0, bytes: 0, path });
        }
        segments.sort_by_key(|s| s.first_seq);
        let count = segments.len();
        for (i, segment) in segments.iter_mut().enumerate() {
            // Only the last segment can end in a torn record; earlier ones were closed whole.
            let (records, valid) = scan(&segment.path, i + 1 == count).map_err(io_error)?;
            segment.records = records;
            segment.bytes = valid;
        }
        for pair in segments.windows(2) {
            if pair[0].first_seq + pair[0].records != pair[1].first_seq {
                return Err(SpoolError::Damaged {
                    dir: dir.display().to_string(),
                    detail: format!(
                        "records missing between {} and {}",
                        pair[0].path.display(),
                        pair[1].path.display()
                    ),
                });
            }
        }
        let saved = match fs::read_to_string(dir.join(CURSOR_FILE)) {
            Ok(text) => Some(text.trim().parse::<u64>().map_err(|e| SpoolError::Damaged {
                dir: dir.display().to_string(),
                detail: format!("the cursor file holds `{}`: {e}", text.trim()),
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(e)),
        };
        // A drained spool has no segments: numbering goes on from the saved cursor, so a
        // cursor saved later never skips records appended after this opening.
        let cursor = match (segments.first(), segments.last()) {
            (Some(first), Some(last)) => {
                saved.unwrap_or(first.first_seq).clamp(first.first_seq, last.first_seq + last.records)
            }
            _ => saved.unwrap_or(0),
        };
        let mut spool = Self {
            dir: dir.to_path_buf(),
            limit,
            segments,
            writer: None,
            cursor,
            read_position: None,
            dirty: false,
            _lock: lock,
        };
        spool.delete_acknowledged()?;
        Ok(spool)
    }

    fn io_error(&self, source: io::Error) -> SpoolError {
        SpoolError::Io { dir: self.dir.display().to_string(), source }
    }

    /// Bytes on disk.
    pub fn used_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Records not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.end() - self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// The sequence number of the first record not yet acknowledged.
    pub fn first_pending(&self) -> u64 {
        self.cursor
    }

    /// The sequence number the next appended record gets.
    fn end(&self) -> u64 {
        self.segments.last().map_or(self.cursor, |s| s.first_seq + s.records)
    }

    /// `Full` unless `bytes` more (see [`record_size`]) fit: a caller that must take a batch
    /// whole asks before appending any of it.
    pub fn check_room(&self, bytes: u64) -> Result<(), SpoolError> {
        let used = self.used_bytes();
        if used.saturating_add(bytes) > self.limit {
            metrics::counter!("mcpsiem_collect_spool_refused_total").increment(1);
            return Err(SpoolError::Full { dir: self.dir.display().to_string(), used, limit: self.limit });
        }
        Ok(())
    }

    /// Appends one record; `Full` when the spool holds its limit. Not durable until
    /// [`Spool::flush`].
    pub fn append(&mut self, key: Option<&[u8]>, payload: &[u8]) -> Result<u64, SpoolError> {
        let key = key.unwrap_or_default();
        let body = 4 + key.len() as u64 + payload.len() as u64;
        let size = record_size(Some(key), payload);
        self.check_room(size)?;
        let needs_segment =
            self.segments.last().is_none_or(|s| s.bytes + size > SEGMENT_BYTES) || self.writer.is_none();
        if needs_segment {
            self.start_segment()?;
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(key);
        crc.update(payload);
        let writer = self.writer.as_mut().expect("a segment is open");
        let result = (|| {
            writer.write_all(&(body as u32).to_le_bytes())?;
            writer.write_all(&(key.len() as u32).to_le_bytes())?;
            writer.write_all(key)?;
            writer.write_all(payload)?;
            writer.write_all(&crc.finalize().to_le_bytes())
        })();
        self.dirty = true;
        result.map_err(|e| self.io_error(e))?;
        let segment = self.segments.last_mut().expect("a segment is open");
        let seq = segment.first_seq + segment.records;
        segment.records += 1;
        segment.bytes += size;
        metrics::gauge!("mcpsiem_collect_spool_bytes").set(self.used_bytes() as f64);
        Ok(seq)
    }

    /// Opens the last segment for appending, or a new one when it is full or absent.
    fn start_segment(&mut self) -> Result<(), SpoolError> {
        self.flush()?;
        if let Some(last) = self.segments.last()
            && last.bytes < SEGMENT_BYTES
            && self.writer.is_none()
        {
            let file = OpenOptions::new().append(true).open(&last.path).map_err(|e| self.io_error(e))?;
            self.writer = Some(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file));
            return Ok(());
        }
        let first_seq = self.end();
        let path = self.dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"));
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| self.io_error(e))?;
        // The new file's name must survive a power cut too, not only its bytes.
        File::open(&self.dir).and_then(|dir| dir.sync_all()).map_err(|e| self.io_error(e))?;
        self.segments.push(Segment { first_seq, records: 0, bytes: 0, path });
        self.writer = Some(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file));
        Ok(())
    }

    /// Makes every appended record durable (data written and synced).
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(writer) = self.writer.as_mut() {
            let result = writer.flush().and_then(|()| writer.get_ref().sync_data());
            result.map_err(|e| self.io_error(e))?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Up to `max` records from the cursor on, in order (the cursor does not move).
    pub fn read(&mut self, max: usize) -> Result<Vec<SpooledRecord>, SpoolError> {
        self.read_from(self.cursor, max)
    }

    /// Up to `max` records from `from` on (not before the cursor), in order. Reading on from
    /// where the previous read stopped seeks straight there instead of scanning the segment.
    pub fn read_from(&mut self, from: u64, max: usize) -> Result<Vec<SpooledRecord>, SpoolError> {
        self.flush()?;
        let from = from.max(self.cursor);
        let mut out = Vec::new();
        for index in 0..self.segments.len() {
            let segment = self.segments[index].clone();
            let end = segment.first_seq + segment.records;
            if end <= from || out.len() >= max {
                continue;
            }
            let mut file = File::open(&segment.path).map_err(|e| self.io_error(e))?;
            let mut seq = segment.first_seq;
            if let Some(position) = self.read_position.as_ref().filter(|p| p.path == segment.path && p.seq <= from) {
                seq = position.seq;
                file.seek(SeekFrom::Start(position.offset)).map_err(|e| self.io_error(e))?;
            }
            let mut reader = BufReader::new(file);
            let mut offset = reader.stream_position().map_err(|e| self.io_error(e))?;
            while seq < end && out.len() < max {
                let (key, payload) =
                    read_record(&mut reader).map_err(|e| self.io_error(e))?.ok_or_else(|| SpoolError::Damaged {
                        dir: self.dir.display().to_string(),
                        detail: format!("{} ends before record {seq}", segment.path.display()),
                    })?;
                offset += record_size(key.as_deref(), &payload);
                if seq >= from {
                    out.push(SpooledRecord { seq, key, payload });
                }
                seq += 1;
            }
            self.read_position = Some(ReadPosition { path: segment.path.clone(), seq, offset });
        }
        Ok(out)
    }

    /// Every record before `seq` is in Kafka: move the cursor and delete the segments it
    /// passed.
    pub fn acknowledge(&mut self, seq: u64) -> Result<(), SpoolError> {
        let seq = seq.min(self.end());
        if seq <= self.cursor {
            return Ok(());
        }
        // Kafka has the records before `seq`, the cursor still points before them: after a
        // restart they are sent again (the same event ids, deduplicated downstream).
        fail::fail_point!("collect::spool_before_cursor", |_| {
            mcpsiem_runtime::failpoint::crash("collect::spool_before_cursor")
        });
        self.cursor = seq;
        let path = self.dir.join(CURSOR_FILE);
        let temporary = self.dir.join(format!("{CURSOR_FILE}.tmp"));
        let write = || -> io::Result<()> {
            let mut file = File::create(&temporary)?;
            file.write_all(seq.to_string().as_bytes())?;
            file.sync_data()?;
            fs::rename(&temporary, &path)
        };
        write().map_err(|e| self.io_error(e))?;
        self.delete_acknowledged()?;
        metrics::gauge!("mcpsiem_collect_spool_bytes").set(self.used_bytes() as f64);
        Ok(())
    }

    /// Deletes segments whose records are all acknowledged (the open one once empty too,
    /// so a drained spool takes no space).
    fn delete_acknowledged(&mut self) -> Result<(), SpoolError> {
        while let Some(first) = self.segments.first() {
            if first.first_seq + first.records > self.cursor {
                break;
            }
            if self.segments.len() == 1 {
                self.writer = None;
            }
            let path = first.path.clone();
            fs::remove_file(&path).map_err(|e| self.io_error(e))?;
            self.segments.remove(0);
        }
        Ok(())
    }
}

type RawRecord = (Option<Vec<u8>>, Vec<u8>);

/// The next record of `reader`; `None` at the end or at a torn or corrupt record.
fn read_record(reader: &mut impl Read) -> io::Result<Option<RawRecord>> {
    let mut word = [0u8; 4];
    match reader.read_exact(&mut word) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let body = u32::from_le_bytes(word) as usize;
    if body < 4 {
        return Ok(None);
    }
    let mut bytes = vec![0u8; body + 4];
    match reader.read_exact(&mut bytes) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let key_len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    if 4 + key_len > body {
        return Ok(None);
    }
    let key = &bytes[4..4 + key_len];
    let payload = &bytes[4 + key_len..body];
    let stored = u32::from_le_bytes(bytes[body..body + 4].try_into().expect("4 bytes"));
    let mut crc = crc32fast::Hasher::new();
    crc.update(key);
    crc.update(payload);
    if crc.finalize() != stored {
        return Ok(None);
    }
    Ok(Some(((!key.is_empty()).then(|| key.to_vec()), payload.to_vec())))
}

/// Counts the whole records of a segment and their bytes; with `truncate_tail`, cuts a
/// torn or corrupt tail off the file.
fn scan(path: &Path, truncate_tail: bool) -> io::Result<(u64, u64)> {
    let mut reader = BufReader::new(File::open(path)?);
    let (mut records, mut valid) = (0u64, 0u64);
    while let Some((key, payload)) = read_record(&mut reader)? {
        records += 1;
        valid += record_size(key.as_deref(), &payload);
    }
    let length = fs::metadata(path)?.len();
    if valid < length && truncate_tail {
        tracing::warn!(path = %path.display(), kept = valid, dropped = length - valid, "spool segment had a torn tail");
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(valid)?;
        file.sync_all()?;
    }
    Ok((records, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(records: &[SpooledRecord]) -> Vec<String> {
        records.iter().map(|r| String::from_utf8(r.payload.clone()).unwrap()).collect()
    }

    #[test]
    fn records_come_back_in_order_until_acknowledged_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.is_empty());
        for i in 0..5 {
            spool.append(Some(b"session-1"), format!("event {i}").as_bytes()).unwrap();
        }
        spool.append(None, b"no key").unwrap();
        let read = spool.read(3).unwrap();
        assert_eq!(payloads(&read), ["event 0", "event 1", "event 2"]);
        assert_eq!(read[0].key.as_deref(), Some(&b"session-1"[..]));
        spool.acknowledge(2).unwrap();
        assert_eq!(spool.pending(), 4);
        drop(spool);

        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let read = spool.read(10).unwrap();
        assert_eq!(payloads(&read), ["event 2", "event 3", "event 4", "no key"]);
        assert_eq!(read.last().unwrap().key, None);
        assert_eq!(read[0].seq, 2);
        spool.append(None, b"after reopen").unwrap();
        spool.acknowledge(7).unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.used_bytes(), 0, "a drained spool takes no space");
        assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().path().to_string_lossy().ends_with(".spool")));
        drop(spool);

        // Drained and reopened: new records are numbered after the saved cursor, so none of
        // them counts as acknowledged.
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.append(None, b"later").unwrap(), 7);
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(payloads(&spool.read(10).unwrap()), ["later"]);
    }

    #[test]
    fn reading_on_from_the_last_read_gives_the_next_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..10 {
            spool.append(if i % 2 == 0 { Some(b"k") } else { None }, format!("event {i}").as_bytes()).unwrap();
        }
        assert_eq!(payloads(&spool.read_from(0, 4).unwrap()), ["event 0", "event 1", "event 2", "event 3"]);
        assert_eq!(payloads(&spool.read_from(4, 3).unwrap()), ["event 4", "event 5", "event 6"]);
        // Earlier than where the last read stopped: scanned again from the segment's start.
        assert_eq!(payloads(&spool.read_from(2, 2).unwrap()), ["event 2", "event 3"]);
        spool.append(None, b"event 10").unwrap();
        assert_eq!(payloads(&spool.read_from(8, 10).unwrap()), ["event 8", "event 9", "event 10"]);
        spool.acknowledge(9).unwrap();
        assert_eq!(payloads(&spool.read_from(0, 10).unwrap()), ["event 9", "event 10"]);
    }

    #[test]
    fn a_full_spool_refuses_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 100).unwrap();
        spool.append(None, &[b'x'; 60]).unwrap();
        let error = spool.append(None, &[b'x'; 60]).unwrap_err();
        assert!(matches!(error, SpoolError::Full { .. }));
        assert!(error.to_string().contains("collect.spool_max_bytes"), "{error}");
        assert_eq!(spool.pending(), 1, "the refused record is not half-written");
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_records_before_it_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..3 {
            spool.append(None, format!("event {i}").as_bytes()).unwrap();
        }
        spool.flush().unwrap();
        drop(spool);
        let segment = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(SEGMENT_SUFFIX))
            .unwrap();
        let length = fs::metadata(&segment).unwrap().len();
        OpenOptions::new().write(true).open(&segment).unwrap().set_len(length - 3).unwrap();

        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(payloads(&spool.read(10).unwrap()), ["event 0", "event 1"]);
        spool.append(None, b"event 2 again").unwrap();
        assert_eq!(payloads(&spool.read(10).unwrap()), ["event 0", "event 1", "event 2 again"]);
    }
}
