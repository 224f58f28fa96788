//! The lake: the Parquet tables the ingester writes and the query service reads, and the
//! small records that make writing them exactly once and compacting them atomic.
//!
//! This is part of the contract between stages (like the event model), so it lives in the
//! shared crate: the ingester and the compactor write through it, and every reader lists
//! files through [`Snapshot`] so that it agrees with them on which files are live.
//!
//! Layout under the lake root:
//!
//! ```text
//! events/date=2026-11-23/hour=14/<file>.parquet       table files, Hive-style partitions
//! deadletters/date=2026-11-23/hour=14/<file>.parquet
//! _lake/commits/<topic>/<partition>/<start offset>.json   one per committed flush
//! _lake/staging/<topic>/<partition>/<ulid>.parquet        written, not yet committed
//! _lake/replaced/<table>/<ulid>.json                      compaction: files a new file replaces
//! _lake/locks/...                                         leases (compaction of one hour)
//! _lake/ledger/<table>/<seq>.json                         hash chain of every file added or removed
//! ```

mod commit;
mod json_records;
mod layout;
mod ledger;
mod prefixed;
mod snapshot;
mod store;
mod verify;

pub use commit::{CommitLog, CommitOutcome, CommitRecord, CommittedFile};
pub use json_records::JsonRecords;
pub use layout::{HourPartition, Table, compacted_file_path, flush_file_path};
pub use ledger::{Ledger, LedgerEntry, LedgerFile, LedgerHead, sha256_hex};
pub use snapshot::{ReplaceRecord, Snapshot, SnapshotFile};
pub use store::{Lake, LakeError};
pub use verify::{Anchor, Finding, FindingKind, TableVerification, verify_table};
