//! The ledger: a hash chain per table of every file that entered or left the table, so that
//! `mcpsiem lake verify` can tell a changed, removed or inserted file from the lake's own
//! history.
//!
//! Entry `n` of a table is `_lake/ledger/<table>/<n, 20 digits>.json`. It names the files a
//! commit or a compaction added (path, SHA-256, size, rows) and removed, and carries the
//! SHA-256 of entry `n - 1`'s bytes, so that changing, removing or inserting an entry breaks
//! the chain at that point. Entries are created with put-if-absent, which orders the
//! appends of any number of writers (ingesters of several partitions, the compactor) without
//! a lock: a writer that loses the race for `n` reads the winner and tries `n + 1`.
//!
//! The chain proves the lake agrees with its history, not that the history is the one
//! written: someone able to rewrite every entry from some point on can forge a consistent
//! chain. Pin the head elsewhere (every evidence bundle's manifest carries the heads it saw;
//! `lake verify --anchor` checks one) to close that gap.
//!
//! Entries are appended after the commit point and before files are moved in, so a file in
//! the table is always in the ledger; a crash in between is repaired on recovery, which
//! looks for the entry by its `source` before appending it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout::Table;
use crate::store::{Lake, LakeError};
use mcpsiem_event::Timestamp;

/// How far before a record's own time recovery looks for its entry: covers clock skew
/// between the writers that share a chain.
const RECOVERY_SKEW_MICROS: i64 = 10 * 60 * 1_000_000;
/// The head hint is rewritten every this many appends (it only shortens the search for the
/// head; the chain never depends on it).
const HINT_EVERY: u64 = 64;
/// A writer gives up after losing this many races in a row (something else is wrong).
const MAX_RACES: usize = 10_000;

/// One file an entry adds to its table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub rows: u64,
    /// Where the file waits until it is moved to `path` (verify reports a file found there
    /// as pending rather than missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<String>,
}

/// One link of a table's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    /// SHA-256 (hex) of entry `seq - 1`'s bytes; empty for entry 0.
    pub prev: String,
    /// RFC 3339, when the entry was appended.
    pub time: String,
    /// Which instance appended it.
    pub writer: String,
    /// What the entry records: `commit <topic>/<partition>/<start offset>`,
    /// `compaction <replace record>` or `baseline`.
    pub source: String,
    pub added: Vec<LedgerFile>,
    pub removed: Vec<String>,
}

/// The latest entry of a chain as a reader or writer last saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHead {
    pub seq: u64,
    pub sha256: String,
}

impl std::fmt::Display for LedgerHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.sha256)
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Appends to and reads the ledger of every table of one lake.
#[derive(Clone, Debug)]
pub struct Ledger {
    lake: Lake,
    /// The head each table's chain had after this process's last append or read.
    heads: Arc<Mutex<HashMap<Table, LedgerHead>>>,
}

impl Ledger {
    pub fn new(lake: Lake) -> Self {
        Self { lake, heads: Arc::default() }
    }

    pub fn dir(table: Table) -> Path {
        Path::from(format!("_lake/ledger/{}", table.name()))
    }

    pub fn entry_path(table: Table, seq: u64) -> Path {
        Path::from(format!("_lake/ledger/{}/{seq:020}.json", table.name()))
    }

    fn hint_path(table: Table) -> Path {
        Path::from(format!("_lake/ledger/{}/HEAD", table.name()))
    }

    /// The sequence numbers of the entries present, ascending.
    pub async fn list_seqs(&self, table: Table) -> Result<Vec<u64>, LakeError> {
        let mut seqs: Vec<u64> = self
            .lake
            .list(&Self::dir(table))
            .await?
            .iter()
            .filter_map(|o| o.location.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// The raw bytes of entry `seq`, if present.
    pub async fn get_bytes(&self, table: Table, seq: u64) -> Result<Option<Bytes>, LakeError> {
        self.lake.get(&Self::entry_path(table, seq)).await
    }

    /// Entry `seq`, parsed.
    pub async fn get(&self, table: Table, seq: u64) -> Result<Option<LedgerEntry>, LakeError> {
        match self.get_bytes(table, seq).await? {
            Some(bytes) => parse_entry(table, seq, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The chain's latest entry, found from the hint (or a listing) and by probing forward.
    pub async fn head(&self, table: Table) -> Result<Option<LedgerHead>, LakeError> {
        let cached = self.heads.lock().expect("not poisoned").get(&table).cloned();
        let mut start = match cached {
            Some(head) => Some(head.seq),
            None => self.hint(table).await?,
        };
        if start.is_none() {
            start = self.list_seqs(table).await?.last().copied();
        }
        let Some(mut seq) = start else { return Ok(None) };
        let mut bytes = match self.get_bytes(table, seq).await? {
            Some(bytes) => bytes,
            // A hint past the chain (entries removed): fall back to the listing.
            None => match self.list_seqs(table).await?.last() {
                Some(&last) => {
                    seq = last;
                    match self.get_bytes(table, seq).await? {
                        Some(bytes) => bytes,
                        None => return Ok(None),
                    }
                }
                None => return Ok(None),
            },
        };
        while let Some(next) = self.get_bytes(table, seq + 1).await? {
            seq += 1;
            bytes = next;
        }
        let head = LedgerHead { seq, sha256: sha256_hex(&bytes) };
        self.heads.lock().expect("not poisoned").insert(table, head.clone());
        Ok(Some(head))
    }

    async fn hint(&self, table: Table) -> Result<Option<u64>, LakeError> {
        Ok(self
            .lake
            .get(&Self::hint_path(table))
            .await?
            .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok()))
    }

    /// Appends an entry recording `added` and `removed` files and returns it.
    pub async fn append(
        &self,
        table: Table,
        source: &str,
        writer: &str,
        added: Vec<LedgerFile>,
        removed: Vec<String>,
    ) -> Result<LedgerEntry, LakeError> {
        let mut head = self.head(table).await?;
        let mut entry = LedgerEntry {
            seq: 0,
            prev: String::new(),
            time: Timestamp::now().to_string(),
            writer: writer.to_string(),
            source: source.to_string(),
            added,
            removed,
        };
        for _ in 0..MAX_RACES {
            entry.seq = head.as_ref().map_or(0, |h| h.seq + 1);
            entry.prev = head.as_ref().map(|h| h.sha256.clone()).unwrap_or_default();
            let bytes = serde_json::to_vec_pretty(&entry).expect("a ledger entry serializes");
            let path = Self::entry_path(table, entry.seq);
            if self.lake.create(&path, Bytes::from(bytes.clone())).await? {
                let new_head = LedgerHead { seq: entry.seq, sha256: sha256_hex(&bytes) };
                self.heads.lock().expect("not poisoned").insert(table, new_head);
                if entry.seq.is_multiple_of(HINT_EVERY) {
                    self.lake.put(&Self::hint_path(table), Bytes::from(entry.seq.to_string())).await?;
                }
                return Ok(entry);
            }
            // Another writer took this number: chain after its entry.
            let theirs = self.get_bytes(table, entry.seq).await?.unwrap_or_default();
            head = Some(LedgerHead { seq: entry.seq, sha256: sha256_hex(&theirs) });
        }
        Err(LakeError::CorruptRecord {
            path: Self::dir(table).to_string(),
            reason: format!("lost {MAX_RACES} races for the next ledger entry; is a writer looping?"),
        })
    }

    /// True if an entry with `source` was appended at or after `since` (less the skew
    /// allowance). Walks back from the head, so it is cheap right after a crash.
    pub async fn contains_since(&self, table: Table, source: &str, since: Timestamp) -> Result<bool, LakeError> {
        // Never trust the cache here: another process may have appended since.
        self.heads.lock().expect("not poisoned").remove(&table);
        let Some(head) = self.head(table).await? else { return Ok(false) };
        let floor = since.as_micros().saturating_sub(RECOVERY_SKEW_MICROS);
        let mut seq = head.seq;
        loop {
            let Some(entry) = self.get(table, seq).await? else { return Ok(false) };
            if entry.source == source {
                return Ok(true);
            }
            if Timestamp::parse(&entry.time).is_ok_and(|t| t.as_micros() < floor) || seq == 0 {
                return Ok(false);
            }
            seq -= 1;
        }
    }

    /// Appends the entry unless recovery finds it was appended before a crash.
    pub async fn ensure(
        &self,
        table: Table,
        source: &str,
        since: Timestamp,
        writer: &str,
        added: Vec<LedgerFile>,
        removed: Vec<String>,
    ) -> Result<bool, LakeError> {
        if self.contains_since(table, source, since).await? {
            return Ok(false);
        }
        tracing::info!(%table, source, "recording in the ledger a change a crash left unrecorded");
        self.append(table, source, writer, added, removed).await?;
        Ok(true)
    }
}

/// Parses entry bytes, checking the entry names its own place.
pub fn parse_entry(table: Table, seq: u64, bytes: &[u8]) -> Result<LedgerEntry, LakeError> {
    let path = Ledger::entry_path(table, seq).to_string();
    let entry: LedgerEntry = serde_json::from_slice(bytes)
        .map_err(|e| LakeError::CorruptRecord { path: path.clone(), reason: e.to_string() })?;
    if entry.seq != seq {
        return Err(LakeError::CorruptRecord { path, reason: format!("the entry says it is number {}", entry.seq) });
    }
    Ok(entry)
}

impl Lake {
    /// SHA-256 (hex) and size of an object, read as a stream; `progress` gets each chunk's
    /// length.
    pub async fn sha256_of(&self, path: &Path, progress: &(dyn Fn(u64) + Sync)) -> Result<(String, u64), LakeError> {
        let result = self.store().get(path).await.map_err(|e| LakeError::store("read", path, e))?;
        let mut stream = result.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.try_next().await.map_err(|e| LakeError::store("read", path, e))? {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            progress(chunk.len() as u64);
        }
        Ok((hex::encode(hasher.finalize()), size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> LedgerFile {
        LedgerFile { path: path.into(), sha256: sha256_hex(path.as_bytes()), bytes: 1, rows: 1, staged: None }
    }

    #[tokio::test]
    async fn writers_sharing_a_chain_link_every_entry_to_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let a = Ledger::new(lake.clone());
        let b = Ledger::new(lake.clone());
        assert_eq!(a.head(Table::Events).await.unwrap(), None);
        a.append(Table::Events, "commit t/0/0", "a", vec![file("events/x.parquet")], vec![]).await.unwrap();
        // `b` has not seen entry 0 yet and races for it: it must chain after it instead.
        let second =
            b.append(Table::Events, "commit t/1/0", "b", vec![file("events/y.parquet")], vec![]).await.unwrap();
        assert_eq!(second.seq, 1);
        let first_bytes = a.get_bytes(Table::Events, 0).await.unwrap().unwrap();
        assert_eq!(second.prev, sha256_hex(&first_bytes));
        // `a`'s cached head is stale; its next append still lands at 2.
        let third =
            a.append(Table::Events, "commit t/0/5", "a", vec![], vec!["events/x.parquet".into()]).await.unwrap();
        assert_eq!(third.seq, 2);
        let head = Ledger::new(lake.clone()).head(Table::Events).await.unwrap().unwrap();
        assert_eq!(head.seq, 2);
        // Other tables have their own chains.
        assert_eq!(a.head(Table::Alerts).await.unwrap(), None);

        let since = Timestamp::now().plus_micros(-1_000_000);
        assert!(a.contains_since(Table::Events, "commit t/1/0", since).await.unwrap());
        assert!(!a.contains_since(Table::Events, "commit t/9/0", since).await.unwrap());
        assert!(!b.ensure(Table::Events, "commit t/1/0", since, "b", vec![], vec![]).await.unwrap());
        assert!(b.ensure(Table::Events, "commit t/9/0", since, "b", vec![], vec![]).await.unwrap());
        assert_eq!(a.list_seqs(Table::Events).await.unwrap(), [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn the_head_is_found_past_a_stale_hint() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let ledger = Ledger::new(lake.clone());
        for i in 0..70 {
            ledger.append(Table::Alerts, &format!("commit a/0/{i}"), "w", vec![], vec![]).await.unwrap();
        }
        // The hint says 64; a fresh reader probes forward to 69.
        let head = Ledger::new(lake).head(Table::Alerts).await.unwrap().unwrap();
        assert_eq!(head.seq, 69);
    }
}
