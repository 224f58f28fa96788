//! `mcpsiem lake verify`: checks each table's ledger chain, then every file of the table
//! against it.
//!
//! What it catches, and how it names it:
//! - an entry changed, removed or inserted: the next entry's `prev` no longer matches, or a
//!   number is missing (`broken_chain`, `missing_entry`, `corrupt_entry`);
//! - a file changed: its SHA-256 differs from the one recorded when it was written
//!   (`changed_file`);
//! - a file removed: the ledger says it is live and it is gone (`missing_file`);
//! - a file inserted: it is in the table but no entry added it (`inserted_file`);
//! - the chain rewritten from some point on: an anchor taken earlier no longer matches
//!   (`anchor_mismatch`).
//!
//! Some states are a writer at work, not tampering, and are reported as notes: a file
//! still staged between its commit and its move (`pending`), or compacted away and not yet
//! deleted (`awaiting_delete`; it must still hash to what was recorded).

use std::collections::{BTreeMap, HashMap};

use object_store::path::Path;
use serde::Serialize;

use crate::layout::Table;
use crate::ledger::{Ledger, LedgerFile, LedgerHead, parse_entry, sha256_hex};
use crate::store::{Lake, LakeError};

/// What one finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    MissingEntry,
    CorruptEntry,
    BrokenChain,
    AnchorMismatch,
    ChangedFile,
    MissingFile,
    InsertedFile,
    /// Not a failure: a file between its commit and its move into the table.
    Pending,
    /// Not a failure: a file compaction replaced, still present and unchanged.
    AwaitingDelete,
}

impl FindingKind {
    /// True for the kinds that mean the lake does not match its ledger.
    pub fn is_failure(self) -> bool {
        !matches!(self, Self::Pending | Self::AwaitingDelete)
    }
}

/// One thing verify found, with where.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub table: String,
    /// The file or ledger entry concerned.
    pub path: String,
    pub detail: String,
}

/// The outcome for one table.
#[derive(Clone, Debug, Serialize)]
pub struct TableVerification {
    pub table: String,
    pub entries: u64,
    pub head: Option<LedgerHead>,
    pub files_checked: u64,
    pub bytes_hashed: u64,
    pub findings: Vec<Finding>,
}

impl TableVerification {
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(|f| f.kind.is_failure())
    }
}

/// An anchor: the hash entry `seq` of a table's chain had when someone recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub table: Table,
    pub head: LedgerHead,
}

impl std::str::FromStr for Anchor {
    type Err = String;

    /// `events=12:ab34…` (as `lake verify` and bundle manifests print heads).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("anchor `{text}`: expected TABLE=SEQ:SHA256, e.g. events=41:3fa1…");
        let (table, rest) = text.split_once('=').ok_or_else(usage)?;
        let (seq, sha256) = rest.split_once(':').ok_or_else(usage)?;
        let table =
            Table::from_name(table.trim()).ok_or_else(|| format!("anchor `{text}`: unknown table `{table}`"))?;
        let seq = seq.trim().parse().map_err(|_| usage())?;
        let sha256 = sha256.trim().to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(usage());
        }
        Ok(Self { table, head: LedgerHead { seq, sha256 } })
    }
}

/// Where a ledger says a path stands after all its entries.
enum Status {
    Live { file: LedgerFile, seq: u64 },
    Removed { file: LedgerFile, removed_in: u64 },
}

/// Verifies one table. `progress` gets the bytes hashed as they are read.
pub async fn verify_table(
    lake: &Lake,
    table: Table,
    anchors: &[Anchor],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TableVerification, LakeError> {
    let ledger = Ledger::new(lake.clone());
    let mut out = TableVerification {
        table: table.name().to_string(),
        entries: 0,
        head: None,
        files_checked: 0,
        bytes_hashed: 0,
        findings: Vec::new(),
    };
    let finding = |kind, path: String, detail: String| Finding { kind, table: table.name().into(), path, detail };

    // 1. The chain.
    let seqs = ledger.list_seqs(table).await?;
    let mut statuses: HashMap<String, Status> = HashMap::new();
    let mut hashes: BTreeMap<u64, String> = BTreeMap::new();
    let mut previous: Option<(u64, String)> = None;
    let mut expected = 0u64;
    for seq in seqs {
        let path = Ledger::entry_path(table, seq).to_string();
        if seq != expected {
            out.findings.push(finding(
                FindingKind::MissingEntry,
                Ledger::entry_path(table, expected).to_string(),
                format!("ledger entries {expected}..{} are missing: removed from the chain", seq - 1),
            ));
        }
        expected = seq + 1;
        let Some(bytes) = ledger.get_bytes(table, seq).await? else { continue };
        let hash = sha256_hex(&bytes);
        let entry = match parse_entry(table, seq, &bytes) {
            Ok(entry) => entry,
            Err(e) => {
                out.findings.push(finding(FindingKind::CorruptEntry, path, e.to_string()));
                previous = Some((seq, hash.clone()));
                hashes.insert(seq, hash);
                continue;
            }
        };
        let linked = match &previous {
            Some((prev_seq, prev_hash)) if *prev_seq + 1 == seq => entry.prev == *prev_hash,
            Some(_) => true, // a gap, already reported
            None => seq != 0 || entry.prev.is_empty(),
        };
        if !linked {
            out.findings.push(finding(
                FindingKind::BrokenChain,
                path.clone(),
                format!(
                    "entry {seq} does not follow entry {}: one of the two was changed or replaced after it was written",
                    seq.saturating_sub(1)
                ),
            ));
        }
        for removed in &entry.removed {
            if let Some(Status::Live { file, .. }) = statuses.remove(removed) {
                statuses.insert(removed.clone(), Status::Removed { file, removed_in: seq });
            }
        }
        for file in entry.added {
            statuses.insert(file.path.clone(), Status::Live { file, seq });
        }
        out.entries += 1;
        previous = Some((seq, hash.clone()));
        hashes.insert(seq, hash);
    }
    out.head = previous.map(|(seq, sha256)| LedgerHead { seq, sha256 });
    for anchor in anchors.iter().filter(|a| a.table == table) {
        let path = Ledger::entry_path(table, anchor.head.seq).to_string();
        match hashes.get(&anchor.head.seq) {
            Some(hash) if *hash == anchor.head.sha256 => {}
            Some(hash) => out.findings.push(finding(
                FindingKind::AnchorMismatch,
                path,
                format!(
                    "entry {} hashes to {hash}, the anchor says {}: the chain was rewritten",
                    anchor.head.seq, anchor.head.sha256
                ),
            )),
            None => out.findings.push(finding(
                FindingKind::AnchorMismatch,
                path,
                format!("entry {} of the anchor is not in the chain: the chain was cut or rewritten", anchor.head.seq),
            )),
        }
    }

    // 2. The files.
    let mut present: BTreeMap<String, u64> = BTreeMap::new();
    for object in lake.list(&table.root()).await? {
        present.insert(object.location.to_string(), object.size);
    }
    let mut live: Vec<(&String, &LedgerFile, u64)> = Vec::new();
    let mut leftovers: Vec<(&String, &LedgerFile, u64)> = Vec::new();
    for (path, status) in &statuses {
        match status {
            Status::Live { file, seq } => live.push((path, file, *seq)),
            Status::Removed { file, removed_in } => leftovers.push((path, file, *removed_in)),
        }
    }
    live.sort_by(|a, b| a.0.cmp(b.0));
    for (path, file, seq) in live {
        if present.remove(path.as_str()).is_none() {
            let staged = match &file.staged {
                Some(staged) => lake.exists(&Path::from(staged.as_str())).await?,
                None => false,
            };
            if staged {
                out.findings.push(finding(
                    FindingKind::Pending,
                    path.clone(),
                    format!("committed in entry {seq}, still staged at {}", file.staged.as_deref().unwrap_or("")),
                ));
            } else {
                out.findings.push(finding(
                    FindingKind::MissingFile,
                    path.clone(),
                    format!("added in ledger entry {seq} ({} rows) and not in the table: removed", file.rows),
                ));
            }
            continue;
        }
        let (sha256, size) = lake.sha256_of(&Path::from(path.as_str()), progress).await?;
        out.files_checked += 1;
        out.bytes_hashed += size;
        if sha256 != file.sha256 {
            out.findings.push(finding(
                FindingKind::ChangedFile,
                path.clone(),
                format!(
                    "SHA-256 {sha256} ({size} bytes), ledger entry {seq} recorded {} ({} bytes): changed after it was written",
                    file.sha256, file.bytes
                ),
            ));
        }
    }
    for (path, file, removed_in) in leftovers {
        if present.remove(path.as_str()).is_none() {
            continue;
        }
        let (sha256, size) = lake.sha256_of(&Path::from(path.as_str()), progress).await?;
        out.files_checked += 1;
        out.bytes_hashed += size;
        if sha256 == file.sha256 {
            out.findings.push(finding(
                FindingKind::AwaitingDelete,
                path.clone(),
                format!("replaced in ledger entry {removed_in}; the compactor deletes it on its next pass"),
            ));
        } else {
            out.findings.push(finding(
                FindingKind::ChangedFile,
                path.clone(),
                format!("replaced in ledger entry {removed_in}, and no longer matches what was recorded"),
            ));
        }
    }
    for (path, size) in present {
        out.findings.push(finding(
            FindingKind::InsertedFile,
            path,
            format!("{size} bytes that no ledger entry added: inserted outside mcpsiem"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    async fn add(lake: &Lake, ledger: &Ledger, path: &str, body: &'static [u8]) {
        lake.put(&Path::from(path), Bytes::from_static(body)).await.unwrap();
        let file =
            LedgerFile { path: path.into(), sha256: sha256_hex(body), bytes: body.len() as u64, rows: 1, staged: None };
        ledger.append(Table::Events, &format!("commit {path}"), "test", vec![file], vec![]).await.unwrap();
    }

    async fn kinds(lake: &Lake, anchors: &[Anchor]) -> Vec<FindingKind> {
        let report = verify_table(lake, Table::Events, anchors, &|_| {}).await.unwrap();
        report.findings.iter().map(|f| f.kind).collect()
    }

    #[tokio::test]
    async fn each_kind_of_tampering_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let ledger = Ledger::new(lake.clone());
        let hour = "events/date=2026-11-23/hour=14";
        for name in ["a", "b", "c"] {
            add(&lake, &ledger, &format!("{hour}/{name}.parquet"), b"rows").await;
        }
        let report = verify_table(&lake, Table::Events, &[], &|_| {}).await.unwrap();
        assert!(report.passed() && report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!((report.entries, report.files_checked), (3, 3));
        let anchor = Anchor { table: Table::Events, head: report.head.clone().unwrap() };

        let root = dir.path();
        std::fs::write(root.join(hour).join("a.parquet"), b"rowz").unwrap();
        assert_eq!(kinds(&lake, &[]).await, [FindingKind::ChangedFile]);
        std::fs::write(root.join(hour).join("a.parquet"), b"rows").unwrap();
        std::fs::remove_file(root.join(hour).join("b.parquet")).unwrap();
        assert_eq!(kinds(&lake, &[]).await, [FindingKind::MissingFile]);
        std::fs::write(root.join(hour).join("b.parquet"), b"rows").unwrap();
        std::fs::write(root.join(hour).join("d.parquet"), b"more").unwrap();
        assert_eq!(kinds(&lake, &[]).await, [FindingKind::InsertedFile]);
        std::fs::remove_file(root.join(hour).join("d.parquet")).unwrap();

        // An entry edited: the next one no longer links to it; an anchor on it fails too.
        let entry = root.join("_lake/ledger/events").join(format!("{:020}.json", 1));
        let original = std::fs::read(&entry).unwrap();
        std::fs::write(&entry, String::from_utf8(original.clone()).unwrap().replace("\"test\"", "\"evil\"")).unwrap();
        assert_eq!(kinds(&lake, &[]).await, [FindingKind::BrokenChain]);
        std::fs::write(&entry, &original).unwrap();
        // An entry removed (with its file, so the files agree): the gap is named.
        std::fs::remove_file(&entry).unwrap();
        std::fs::remove_file(root.join(hour).join("b.parquet")).unwrap();
        assert_eq!(kinds(&lake, &[]).await, [FindingKind::MissingEntry]);
        std::fs::write(&entry, &original).unwrap();
        std::fs::write(root.join(hour).join("b.parquet"), b"rows").unwrap();
        assert!(kinds(&lake, std::slice::from_ref(&anchor)).await.is_empty());
        // The last entry dropped and its file deleted: only an anchor can tell.
        let last = root.join("_lake/ledger/events").join(format!("{:020}.json", 2));
        std::fs::remove_file(&last).unwrap();
        std::fs::remove_file(root.join(hour).join("c.parquet")).unwrap();
        assert!(kinds(&lake, &[]).await.is_empty());
        assert_eq!(kinds(&lake, &[anchor]).await, [FindingKind::AnchorMismatch]);
    }

    #[test]
    fn anchors_parse_from_what_verify_prints() {
        let head = LedgerHead { seq: 12, sha256: sha256_hex(b"x") };
        let anchor: Anchor = format!("events={head}").parse().unwrap();
        assert_eq!(anchor, Anchor { table: Table::Events, head });
        assert!("events=12".parse::<Anchor>().unwrap_err().contains("TABLE=SEQ:SHA256"));
        assert!("nope=1:00".parse::<Anchor>().is_err());
    }
}
