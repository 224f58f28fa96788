//! `mcpsiem export`, `mcpsiem export verify` and `mcpsiem keys generate`: evidence bundles
//! from the command line (docs/evidence.md).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mcpsiem_event::Timestamp;
use mcpsiem_query::export::{ExportKey, ExportRequest, Exporter, PublicKey, Selector, verify_bundle};
use mcpsiem_query::format::{Format, Sink};
use mcpsiem_query::{QueryEngine, TimeRange};

use crate::config::Config;

/// What `mcpsiem export` was asked for.
pub struct ExportArgs {
    pub selector: Selector,
    pub start: Option<String>,
    pub end: Option<String>,
    pub format: String,
    pub out: PathBuf,
    pub json: bool,
}

fn time(text: Option<&str>, flag: &str) -> Result<Option<Timestamp>> {
    text.map(|t| Timestamp::parse(t).with_context(|| format!("{flag} {t}: use RFC 3339, e.g. 2026-11-24T00:00:00Z")))
        .transpose()
}

/// The signing key of `[evidence]`, with what to do when it is missing.
pub fn signing_key(config: &Config) -> Result<ExportKey> {
    if config.evidence.signing_key.is_empty() {
        bail!(
            "evidence.signing_key is not set: create a key pair with `mcpsiem keys generate --dir keys` and set \
             evidence.signing_key (or MCPSIEM_EVIDENCE__SIGNING_KEY) to keys/export.key"
        );
    }
    Ok(ExportKey::load(Path::new(&config.evidence.signing_key))?)
}

/// Builds a bundle from the lake, with a progress bar of rows; prints where it is.
pub fn export(config: &Config, args: ExportArgs) -> Result<()> {
    let format = Format::for_sink(&args.format, Sink::Export).map_err(|message| anyhow::anyhow!("--{message}"))?;
    let range = TimeRange { start: time(args.start.as_deref(), "--start")?, end: time(args.end.as_deref(), "--end")? };
    let key = signing_key(config)?;
    if args.out.exists() {
        bail!("{} exists already; choose another --out (bundles are never overwritten)", args.out.display());
    }
    let runtime = mcpsiem_runtime::lake_runtime::build(mcpsiem_runtime::lake_runtime::COMMAND_READ_THREADS)?;
    let outcome = runtime.block_on(async {
        let lake = config.lake.open()?;
        // One export, one pass over each file: the footer cache the query service keeps
        // across queries would only hold memory here (up to query.metadata_cache_bytes,
        // growing with the files read).
        let mut query = config.query.clone();
        query.metadata_cache_bytes = 0;
        let engine = QueryEngine::new(lake, query);
        let exporter = Exporter::new(engine.clone(), key, &config.evidence);
        // The command line reads the lake directly: whoever can do that is its administrator.
        let caller = mcpsiem_runtime::auth::local_operator();
        let request = ExportRequest { selector: args.selector, range, format, via: "cli".into() };
        let bar = mcpsiem_runtime::progress::rows("exporting");
        let result = exporter.export(&caller, &request, &args.out, &|n| bar.inc(n)).await;
        bar.finish_and_clear();
        engine.flush_audit().await;
        Ok::<_, anyhow::Error>(result?)
    })?;
    if args.json {
        let mut summary = serde_json::to_value(&outcome)?;
        summary["peak_rss_bytes"] = serde_json::json!(mcpsiem_runtime::ops::peak_rss_bytes());
        println!("{summary}");
        return Ok(());
    }
    println!(
        "{}: {} rows, {} bytes, {} lake files in scope; manifest SHA-256 {}",
        outcome.path.display(),
        outcome.rows,
        outcome.bytes,
        outcome.lake_files,
        outcome.manifest_sha256
    );
    Ok(())
}

/// Checks a bundle; prints each check and returns whether all passed.
pub fn verify(bundle: &Path, key: &Path, json: bool) -> Result<bool> {
    let key = PublicKey::load(key)?;
    let bar = mcpsiem_runtime::progress::bytes("hashing bundle files");
    let report = verify_bundle(bundle, &key, &|n| bar.inc(n));
    bar.finish_and_clear();
    let passed = report.passed();
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "passed": passed, "report": report }))?);
        return Ok(passed);
    }
    for check in &report.checks {
        println!("{} {}: {}", if check.passed { "PASS" } else { "FAIL" }, check.name, check.detail);
    }
    if let Some(manifest) = &report.manifest {
        let trust = if report.checks.iter().any(|c| c.name == "signature" && c.passed) { "" } else { " (UNVERIFIED)" };
        println!(
            "bundle{trust} {} made {} by {} ({}, via {}): {} {} — {} rows",
            manifest.bundle_id,
            manifest.created_at,
            manifest.requester.name,
            manifest.requester.role,
            manifest.requester.via,
            manifest.query.kind,
            manifest.query.value,
            manifest.rows
        );
    }
    println!("{}", if passed { "bundle verified" } else { "bundle verification FAILED" });
    Ok(passed)
}

/// Writes a new signing key pair.
pub fn generate_keys(dir: &Path, name: &str) -> Result<()> {
    let key = ExportKey::generate();
    let (private, public) = key.write_pair(dir, name)?;
    println!("private key: {} (keep it secret; set evidence.signing_key to it)", private.display());
    println!("public key:  {} (give it to auditors)", public.display());
    println!("key id:      {}", key.key_id());
    Ok(())
}
