//! Evidence exports: the rows an auditor asks for, in a zip with a manifest (what was asked,
//! by whom, when, the SHA-256 of every file, the lake files read and the ledger heads) and
//! an Ed25519 signature over the manifest. `verify` checks a bundle without the lake.
//!
//! Rows stream from the query into the zip entry (hashed on the way), so memory stays at a
//! batch and a Parquet row group whatever the size of the export.

pub mod bundle;
pub mod data;
pub mod manifest;
pub mod signing;
pub mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use futures::StreamExt;
use mcpsiem_event::Timestamp;
use mcpsiem_lake::{Ledger, Table};
use serde::{Deserialize, Serialize};

pub use manifest::Manifest;
pub use signing::{ExportKey, PublicKey};
pub use verify::{Check, VerifyReport, verify_bundle};

use crate::QueryError;
use crate::audit::AuditRecord;
use crate::engine::{QueryEngine, QueryRequest};
use crate::format::Format;
use crate::tables::TimeRange;
use manifest::{BundleFile, LakeEvidence, LakeFile, QueryDescription, Requester, TimeRangeDescription};
use mcpsiem_runtime::auth::{Caller, Role};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    Request(String),
    #[error("no alert `{0}` in the alerts table (check the id, or widen --start/--end)")]
    AlertNotFound(String),
    #[error("signing key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("writing {path} failed: {source} (is the disk full?)")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the zip failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing a data file failed: {0}")]
    Encode(String),
    #[error("the lake cannot be read: {0}")]
    Lake(#[from] mcpsiem_lake::LakeError),
}

impl From<datafusion::arrow::error::ArrowError> for ExportError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Self::Encode(e.to_string())
    }
}

impl From<parquet::errors::ParquetError> for ExportError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Self::Encode(e.to_string())
    }
}

impl ExportError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Query(e) => e.code(),
            Self::Request(_) => "invalid_request",
            Self::AlertNotFound(_) => "not_found",
            Self::Key { .. } => "signing_key",
            Self::Io { .. } | Self::Zip(_) | Self::Encode(_) => "write_failed",
            Self::Lake(_) => "lake_unavailable",
        }
    }
}

/// The `[evidence]` section of the configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// The Ed25519 private key (PKCS#8 PEM) that signs manifests; `mcpsiem keys generate`
    /// makes one. Empty: exports are refused.
    pub signing_key: String,
    /// Where `POST /api/v1/exports` builds bundles before sending them (removed after);
    /// empty: the system's temporary directory.
    pub work_dir: String,
    /// An export running longer is cancelled.
    pub timeout_seconds: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self { signing_key: String::new(), work_dir: String::new(), timeout_seconds: 3600 }
    }
}

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Any read-only SQL over the lake's tables.
    Sql(String),
    /// An alert and the events it matched.
    Alert(String),
    /// Every event of an MCP session.
    Session(String),
    /// Every event carrying a token fingerprint.
    Token(String),
    /// Every event of a user: the token's subject or the end user id.
    User(String),
}

impl Selector {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sql(_) => "sql",
            Self::Alert(_) => "alert",
            Self::Session(_) => "session",
            Self::Token(_) => "token",
            Self::User(_) => "user",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Sql(v) | Self::Alert(v) | Self::Session(v) | Self::Token(v) | Self::User(v) => v,
        }
    }
}

/// One export as asked.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub selector: Selector,
    pub range: TimeRange,
    pub format: Format,
    /// `cli` or `api`, for the manifest.
    pub via: String,
}

/// A finished bundle.
#[derive(Clone, Debug, Serialize)]
pub struct ExportOutcome {
    pub path: PathBuf,
    pub bundle_id: String,
    pub manifest_sha256: String,
    pub rows: u64,
    pub bytes: u64,
    pub lake_files: u64,
}

/// One data file of a bundle and the query that fills it.
struct Part {
    name: String,
    sql: String,
    range: TimeRange,
    /// A fixed format for this file (the alert's OCSF finding); `None`: the request's.
    format: Option<Format>,
}

/// Builds bundles over one lake with one signing key.
#[derive(Clone)]
pub struct Exporter {
    engine: QueryEngine,
    key: ExportKey,
    timeout: Duration,
    generator: String,
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Which of the lake's tables `sql` names (a plain word match: at worst a few more files
/// are listed as in scope).
fn tables_named(sql: &str) -> Vec<Table> {
    let lower = sql.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).collect();
    Table::ALL.into_iter().filter(|t| words.contains(&t.name())).collect()
}

impl Exporter {
    pub fn new(engine: QueryEngine, key: ExportKey, config: &EvidenceConfig) -> Self {
        Self {
            engine,
            key,
            timeout: Duration::from_secs(config.timeout_seconds.max(1)),
            generator: format!("mcpsiem {}", env!("CARGO_PKG_VERSION")),
        }
    }

    pub fn engine(&self) -> &QueryEngine {
        &self.engine
    }

    /// Builds the bundle at `out` for `caller` and records the export in the audit log,
    /// whether it succeeds or not. `progress` gets the rows written as they are.
    pub async fn export(
        &self,
        caller: &Caller,
        request: &ExportRequest,
        out: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ExportOutcome, ExportError> {
        let started = Instant::now();
        let mut audit = AuditRecord::start(
            caller,
            &QueryRequest {
                sql: format!("{}: {}", request.selector.kind(), request.selector.value()),
                range: request.range,
                ..QueryRequest::default()
            },
        );
        audit.action = "export".into();
        self.engine.audit(audit.running()).await;
        // Dropped before the end (the client went away and the request was cancelled): the
        // attempt is still given its outcome.
        let cancelled = CancelledExport { record: Some(audit.clone()), engine: self.engine.clone(), started };
        let result = if caller.role < Role::Auditor {
            Err(ExportError::Query(QueryError::Forbidden(format!(
                "exports need the auditor or admin role; `{}` is {}",
                caller.name,
                caller.role.as_str()
            ))))
        } else {
            self.build(caller, request, out, progress).await
        };
        audit.duration_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok((outcome, bytes_read)) => {
                audit.outcome = "ok".into();
                audit.rows = outcome.rows;
                audit.files_read = outcome.lake_files;
                audit.bytes_read = *bytes_read;
                audit.detail = Some(
                    serde_json::json!({
                        "bundle": outcome.path.file_name().map(|n| n.to_string_lossy().to_string()),
                        "bundle_id": outcome.bundle_id,
                        "manifest_sha256": outcome.manifest_sha256,
                        "format": request.format.file_extension(),
                        "bytes": outcome.bytes,
                        "via": request.via,
                    })
                    .to_string(),
                );
                metrics::counter!("mcpsiem_exports_total", "outcome" => "ok").increment(1);
                metrics::counter!("mcpsiem_export_rows_total").increment(outcome.rows);
            }
            Err(e) => {
                audit.outcome = e.code().into();
                audit.error = Some(e.to_string());
                metrics::counter!("mcpsiem_exports_total", "outcome" => e.code()).increment(1);
            }
        }
        cancelled.disarm();
        self.engine.audit(audit).await;
        result.map(|(outcome, _)| outcome)
    }

    async fn parts(
        &self,
        caller: &Caller,
        request: &ExportRequest,
    ) -> Result<(Vec<Part>, BTreeMap<String, String>), ExportError> {
        let mut parameters = BTreeMap::new();
        let range = request.range;
        let events = |filter: String| Part {
            name: "events".into(),
            sql: format!("SELECT * FROM events WHERE {filter} ORDER BY event_time, event_id"),
            range,
            format: None,
        };
        let value = request.selector.value();
        if value.trim().is_empty() {
            return Err(ExportError::Request(format!("the {} to export is empty", request.selector.kind())));
        }
        let parts = match &request.selector {
            Selector::Sql(sql) => vec![Part { name: "result".into(), sql: sql.clone(), range, format: None }],
            Selector::Session(id) => vec![events(format!("mcp_session_id = {}", quote(id)))],
            Selector::Token(fingerprint) => vec![events(format!("auth_token_fingerprint = {}", quote(fingerprint)))],
            Selector::User(user) => {
                vec![events(format!("(auth_token_sub = {q} OR enduser_id = {q})", q = quote(user)))]
            }
            Selector::Alert(id) => {
                let alert_sql = format!("SELECT * FROM alerts WHERE alert_id = {}", quote(id));
                let lookup = QueryRequest {
                    sql: format!(
                        "SELECT first_time, last_time, rule_id, event_ids FROM alerts WHERE alert_id = {}",
                        quote(id)
                    ),
                    range,
                    export: Some(self.timeout),
                    ..QueryRequest::default()
                };
                let mut answer = self.engine.run(caller, lookup).await?;
                let mut found = None;
                while let Some(batch) = answer.stream.next().await {
                    let batch = batch?;
                    if batch.num_rows() > 0 && found.is_none() {
                        let first = batch.column(0).as_primitive::<TimestampMicrosecondType>().value(0);
                        let last = batch.column(1).as_primitive::<TimestampMicrosecondType>().value(0);
                        let rule = batch.column(2).as_string::<i32>().value(0).to_string();
                        let ids_list = batch.column(3).as_list::<i32>();
                        let ids: Vec<String> = if ids_list.is_null(0) {
                            Vec::new()
                        } else {
                            let values = ids_list.value(0);
                            values.as_string::<i32>().iter().flatten().map(str::to_string).collect()
                        };
                        found = Some((first, last, rule, ids));
                    }
                }
                let Some((first, last, rule, ids)) = found else {
                    return Err(ExportError::AlertNotFound(id.clone()));
                };
                parameters.insert("rule_id".into(), rule);
                parameters.insert("alert_first_time".into(), Timestamp::from_micros(first).to_string());
                parameters.insert("alert_last_time".into(), Timestamp::from_micros(last).to_string());
                parameters.insert("matched_events".into(), ids.len().to_string());
                let filter = if ids.is_empty() {
                    "false".to_string()
                } else {
                    format!("event_id IN ({})", ids.iter().map(|i| quote(i)).collect::<Vec<_>>().join(", "))
                };
                let events_range = TimeRange {
                    start: Some(Timestamp::from_micros(first)),
                    end: Some(Timestamp::from_micros(last.saturating_add(1))),
                };
                vec![
                    Part { name: "alert".into(), sql: alert_sql.clone(), range, format: None },
                    // The same alert as the OCSF Detection Finding SIEMs and security lakes take.
                    Part { name: "alert".into(), sql: alert_sql, range, format: Some(Format::Ocsf) },
                    Part {
                        name: "events".into(),
                        sql: format!("SELECT * FROM events WHERE {filter} ORDER BY event_time, event_id"),
                        range: events_range,
                        format: None,
                    },
                ]
            }
        };
        Ok((parts, parameters))
    }

    async fn build(
        &self,
        caller: &Caller,
        request: &ExportRequest,
        out: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(ExportOutcome, u64), ExportError> {
        let (parts, parameters) = self.parts(caller, request).await?;
        let mut bundle = bundle::BundleWriter::create(out)?;
        let written = self.write_parts(caller, request, &parts, &mut bundle, progress).await;
        let (files, rows, read) = match written {
            Ok(written) => written,
            Err(e) => {
                bundle.abandon();
                return Err(e);
            }
        };
        let mut files = files;
        let readme = readme(&self.key.key_id());
        files.push(BundleFile {
            name: "README.txt".into(),
            sha256: mcpsiem_lake::sha256_hex(readme.as_bytes()),
            bytes: readme.len() as u64,
            rows: 0,
            sql: None,
        });
        let lake = self.engine.lake();
        let mut files_read = Vec::with_capacity(read.len());
        let mut bytes_read = 0;
        for file in read {
            let hashed = lake.sha256_of(&object_store::path::Path::from(file.path.as_str()), &|_| {}).await;
            let sha256 = match hashed {
                Ok((sha256, size)) => {
                    bytes_read += size;
                    Some(sha256)
                }
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            files_read.push(LakeFile { table: file.table, path: file.path, bytes: file.size, sha256 });
        }
        let ledger = Ledger::new(lake.clone());
        let mut ledger_heads = BTreeMap::new();
        for table in Table::ALL {
            if let Some(head) = ledger.head(table).await? {
                ledger_heads.insert(table.name().to_string(), head);
            }
        }
        let bundle_id = ulid::Ulid::new().to_string();
        let manifest = Manifest {
            format_version: manifest::FORMAT_VERSION,
            bundle_id: bundle_id.clone(),
            generator: self.generator.clone(),
            created_at: Timestamp::now().to_string(),
            requester: Requester {
                name: caller.name.clone(),
                role: caller.role.as_str().into(),
                via: request.via.clone(),
            },
            query: QueryDescription {
                kind: request.selector.kind().into(),
                value: request.selector.value().into(),
                parameters,
            },
            time_range: TimeRangeDescription {
                start: request.range.start.map(|t| t.to_string()),
                end: request.range.end.map(|t| t.to_string()),
            },
            format: request.format.file_extension().into(),
            files,
            rows,
            lake: LakeEvidence { location: lake.location().to_string(), files_read, ledger_heads },
            signing_key_id: self.key.key_id(),
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        let signature = self.key.sign(&manifest_bytes);
        let lake_files = manifest.lake.files_read.len() as u64;
        let finished = (|| {
            bundle.add("README.txt", readme.as_bytes())?;
            bundle.add(manifest::MANIFEST_NAME, &manifest_bytes)?;
            bundle.add(manifest::SIGNATURE_NAME, &signature)?;
            Ok::<_, ExportError>(())
        })();
        if let Err(e) = finished {
            bundle.abandon();
            return Err(e);
        }
        let path = bundle.finish()?;
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let outcome = ExportOutcome {
            path,
            bundle_id,
            manifest_sha256: mcpsiem_lake::sha256_hex(&manifest_bytes),
            rows,
            bytes,
            lake_files,
        };
        Ok((outcome, bytes_read))
    }

    /// Runs each part's query into its zip entry. Returns the files, the rows and the lake
    /// files in scope.
    async fn write_parts(
        &self,
        caller: &Caller,
        request: &ExportRequest,
        parts: &[Part],
        bundle: &mut bundle::BundleWriter,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(Vec<BundleFile>, u64, Vec<crate::tables::FileRead>), ExportError> {
        let mut files = Vec::new();
        let mut total_rows = 0;
        let mut read: BTreeMap<String, crate::tables::FileRead> = BTreeMap::new();
        for part in parts {
            let query = QueryRequest {
                sql: part.sql.clone(),
                range: part.range,
                export: Some(self.timeout),
                ..QueryRequest::default()
            };
            if caller.role < Role::Admin && part.sql.to_ascii_lowercase().contains("audit_log") {
                return Err(
                    QueryError::Forbidden("the audit_log table is readable by the admin role only".into()).into()
                );
            }
            let mut answer = self.engine.run(caller, query).await?;
            let named = tables_named(&part.sql);
            for file in answer.files.iter().filter(|f| named.iter().any(|t| t.name() == f.table)) {
                read.insert(file.path.clone(), file.clone());
            }
            let format = part.format.unwrap_or(request.format);
            let name = format!("data/{}.{}", part.name, format.file_extension());
            let entry = bundle.entry(&name, format.compress_in_zip())?;
            let mut writer = data::BatchWriter::new(format, &answer.schema, entry)?;
            let mut rows = 0u64;
            while let Some(batch) = answer.stream.next().await {
                let batch = batch?;
                #[cfg(feature = "failpoints")]
                if fail::eval("query::export_slow_batch", |_| ()).is_some() {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                writer.write(&batch)?;
                rows += batch.num_rows() as u64;
                progress(batch.num_rows() as u64);
            }
            let (sha256, bytes) = writer.finish()?;
            // A second form of rows already counted (the alert's finding) adds none.
            if part.format.is_none() {
                total_rows += rows;
            }
            files.push(BundleFile { name, sha256, bytes, rows, sql: Some(part.sql.clone()) });
        }
        Ok((files, total_rows, read.into_values().collect()))
    }
}

/// The README inside every bundle: how to check it without trusting the sender.
fn readme(key_id: &str) -> String {
    format!(
        "mcpsiem evidence bundle\n\
         =======================\n\n\
         manifest.json  what was exported, by whom and when; the SHA-256 of every file here;\n\
         \x20              the lake files read and their SHA-256; the lake's ledger heads.\n\
         manifest.sig   Ed25519 signature (64 raw bytes) over manifest.json, by key {key_id}.\n\
         data/          the rows.\n\n\
         Verify with mcpsiem (checks the signature and every file):\n\n\
         \x20   mcpsiem export verify BUNDLE.zip --key export.pub\n\n\
         Or with openssl and sha256sum, after unzipping:\n\n\
         \x20   openssl pkeyutl -verify -pubin -inkey export.pub -rawin -in manifest.json -sigfile manifest.sig\n\
         \x20   sha256sum data/* README.txt   # compare with \"files\" in manifest.json\n\n\
         Get export.pub from the operator through a channel other than this bundle.\n"
    )
}
/// Records an export that was dropped before it ended as `cancelled`.
struct CancelledExport {
    record: Option<AuditRecord>,
    engine: QueryEngine,
    started: Instant,
}

impl CancelledExport {
    /// The export ended on its own: nothing to record here.
    fn disarm(mut self) {
        self.record = None;
    }
}

impl Drop for CancelledExport {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            metrics::counter!("mcpsiem_exports_total", "outcome" => "cancelled").increment(1);
            self.engine.audit_later(record.failed(&QueryError::Cancelled, self.started.elapsed()));
        }
    }
}
