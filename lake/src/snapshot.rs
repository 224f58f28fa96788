//! Which files of a table are live: the one listing every reader must use.
//!
//! Compaction replaces many files of an hour by few. It cannot swap them atomically on an
//! object store, so it first writes a [`ReplaceRecord`] naming the old files and their
//! replacements, then moves the replacements in, then deletes the old files. A reader lists
//! the table first and reads the records second; with that order a listing that holds a
//! replacement always sees its record, and:
//!
//! - if every replacement of a record is listed, the files it replaces are left out;
//! - if only some are (the compactor is between two renames), those are left out instead.
//!
//! Either way each event is counted once.

use std::collections::HashSet;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::layout::{HourPartition, Table};
use crate::store::{Lake, LakeError};

/// Compaction's note that `replacements` together hold exactly the rows of `replaced`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplaceRecord {
    pub table: String,
    pub replaced: Vec<String>,
    pub replacements: Vec<String>,
    /// Where each replacement was written before being moved in, so that a crash between
    /// the record and the moves can be finished.
    pub staged: Vec<String>,
    pub created_at: String,
    /// The replacements as the ledger records them (hashes, sizes, rows). Empty in records
    /// written before the ledger existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<crate::ledger::LedgerFile>,
}

impl ReplaceRecord {
    pub fn dir(table: Table) -> Path {
        Path::from(format!("_lake/replaced/{}", table.name()))
    }

    pub fn new_path(table: Table) -> Path {
        Path::from(format!("{}/{}.json", Self::dir(table), ulid::Ulid::new()))
    }

    /// How the ledger names the compaction this record describes.
    pub fn ledger_source(path: &Path) -> String {
        format!("compaction {}", path.filename().unwrap_or_default())
    }

    pub async fn write(&self, lake: &Lake, path: &Path) -> Result<(), LakeError> {
        lake.put(path, Bytes::from(serde_json::to_vec_pretty(self).expect("a replace record serializes"))).await
    }

    /// Every record of a table, with its path.
    pub async fn load_all(lake: &Lake, table: Table) -> Result<Vec<(Path, ReplaceRecord)>, LakeError> {
        let mut records = Vec::new();
        for object in lake.list(&Self::dir(table)).await? {
            let Some(bytes) = lake.get(&object.location).await? else { continue };
            let record = serde_json::from_slice(&bytes)
                .map_err(|e| LakeError::CorruptRecord { path: object.location.to_string(), reason: e.to_string() })?;
            records.push((object.location, record));
        }
        Ok(records)
    }
}

/// One live data file.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotFile {
    pub path: Path,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// The hour partition its directory names.
    pub hour: Option<HourPartition>,
}

/// The live files of one table at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub table: Table,
    pub files: Vec<SnapshotFile>,
}

impl Snapshot {
    pub async fn load(lake: &Lake, table: Table) -> Result<Self, LakeError> {
        // Listing before reading the records is what makes this consistent: see the module doc.
        let listed = lake.list(&table.root()).await?;
        let records = ReplaceRecord::load_all(lake, table).await?;
        let present: HashSet<&str> = listed.iter().map(|o| o.location.as_ref()).collect();
        let mut hidden: HashSet<String> = HashSet::new();
        for (_, record) in &records {
            if record.replacements.iter().all(|r| present.contains(r.as_str())) {
                hidden.extend(record.replaced.iter().cloned());
            } else {
                hidden.extend(record.replacements.iter().cloned());
            }
        }
        let mut files: Vec<SnapshotFile> = listed
            .into_iter()
            .filter(|o| o.location.extension() == Some("parquet") && !hidden.contains(o.location.as_ref()))
            .map(|o| SnapshotFile {
                hour: HourPartition::from_path(&o.location),
                path: o.location,
                size: o.size,
                last_modified: o.last_modified,
            })
            .collect();
        files.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        Ok(Self { table, files })
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn touch(lake: &Lake, path: &str) {
        lake.put(&Path::from(path), Bytes::from_static(b"x")).await.unwrap();
    }

    fn names(snapshot: &Snapshot) -> Vec<&str> {
        snapshot.files.iter().map(|f| f.path.filename().unwrap()).collect()
    }

    #[tokio::test]
    async fn replaced_files_disappear_only_once_all_replacements_are_in() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let hour = "events/date=2026-11-23/hour=14";
        touch(&lake, &format!("{hour}/a.parquet")).await;
        touch(&lake, &format!("{hour}/b.parquet")).await;
        let record = ReplaceRecord {
            table: "events".into(),
            replaced: vec![format!("{hour}/a.parquet"), format!("{hour}/b.parquet")],
            replacements: vec![format!("{hour}/c1.parquet"), format!("{hour}/c2.parquet")],
            staged: vec![],
            created_at: String::new(),
            ledger: vec![],
        };
        record.write(&lake, &ReplaceRecord::new_path(Table::Events)).await.unwrap();
        assert_eq!(names(&Snapshot::load(&lake, Table::Events).await.unwrap()), ["a.parquet", "b.parquet"]);
        touch(&lake, &format!("{hour}/c1.parquet")).await;
        assert_eq!(names(&Snapshot::load(&lake, Table::Events).await.unwrap()), ["a.parquet", "b.parquet"]);
        touch(&lake, &format!("{hour}/c2.parquet")).await;
        let snapshot = Snapshot::load(&lake, Table::Events).await.unwrap();
        assert_eq!(names(&snapshot), ["c1.parquet", "c2.parquet"]);
        assert_eq!(snapshot.files[0].hour.unwrap().dir_name(), "date=2026-11-23/hour=14");
    }
}
