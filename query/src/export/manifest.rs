//! `manifest.json`: what a bundle holds and where it came from. The signature in
//! `manifest.sig` covers its exact bytes.

use std::collections::BTreeMap;

use mcpsiem_lake::LedgerHead;
use serde::{Deserialize, Serialize};

pub const MANIFEST_NAME: &str = "manifest.json";
pub const SIGNATURE_NAME: &str = "manifest.sig";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub bundle_id: String,
    /// The program and version that wrote the bundle.
    pub generator: String,
    /// RFC 3339.
    pub created_at: String,
    pub requester: Requester,
    pub query: QueryDescription,
    pub time_range: TimeRangeDescription,
    /// `parquet`, `csv` or `jsonl`.
    pub format: String,
    /// Every file of the bundle other than the manifest and its signature.
    pub files: Vec<BundleFile>,
    /// Rows over all data files.
    pub rows: u64,
    pub lake: LakeEvidence,
    /// Which key signed `manifest.sig` (see `mcpsiem keys generate`).
    pub signing_key_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Requester {
    pub name: String,
    pub role: String,
    /// `cli` or `api`.
    pub via: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryDescription {
    /// `sql`, `alert`, `session`, `token` or `user`.
    pub kind: String,
    /// The SQL, alert id, session id, token fingerprint or user as asked.
    pub value: String,
    /// What else the selector resolved to (an alert's rule, its event count…).
    pub parameters: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeRangeDescription {
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleFile {
    /// Path inside the bundle.
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
    /// Rows of a data file; 0 for other files.
    pub rows: u64,
    /// The SQL that produced a data file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LakeEvidence {
    pub location: String,
    /// The lake files the queries could read (every file of the tables they name in the
    /// time range), hashed when the bundle was made.
    pub files_read: Vec<LakeFile>,
    /// Each table's ledger head when the bundle was made: an anchor for `lake verify`.
    pub ledger_heads: BTreeMap<String, LedgerHead>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LakeFile {
    pub table: String,
    pub path: String,
    pub bytes: u64,
    /// None when the file was compacted away between the query and the hashing.
    pub sha256: Option<String>,
}
