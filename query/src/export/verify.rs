//! `mcpsiem export verify`: the signature, then every file, each with a plain verdict.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::bundle::BundleReader;
use super::manifest::{MANIFEST_NAME, Manifest, SIGNATURE_NAME};
use super::signing::PublicKey;

/// Manifests are small; a bigger one is not ours.
const MANIFEST_LIMIT: u64 = 64 << 20;

/// One check and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub bundle: String,
    pub checks: Vec<Check>,
    /// The manifest, when it could be read (what the bundle says it holds).
    pub manifest: Option<Manifest>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    fn check(&mut self, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check { name: name.into(), passed, detail: detail.into() });
    }
}

/// Verifies the bundle at `path` with `key`. Never fails: whatever goes wrong is a failed
/// check in the report.
pub fn verify_bundle(path: &Path, key: &PublicKey, progress: &dyn Fn(u64)) -> VerifyReport {
    let mut report = VerifyReport { bundle: path.display().to_string(), checks: Vec::new(), manifest: None };
    let mut bundle = match BundleReader::open(path) {
        Ok(bundle) => bundle,
        Err(e) => {
            report.check("bundle", false, e);
            return report;
        }
    };
    let manifest_bytes = match bundle.read(MANIFEST_NAME, MANIFEST_LIMIT) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            report.check("manifest", false, "manifest.json is missing: this is not a complete mcpsiem bundle");
            return report;
        }
        Err(e) => {
            report.check("manifest", false, e);
            return report;
        }
    };
    let signature = match bundle.read(SIGNATURE_NAME, 1024) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            report.check("signature", false, "manifest.sig is missing: the bundle is unsigned");
            Vec::new()
        }
        Err(e) => {
            report.check("signature", false, e);
            Vec::new()
        }
    };
    let manifest: Option<Manifest> = match serde_json::from_slice(&manifest_bytes) {
        Ok(manifest) => Some(manifest),
        Err(e) => {
            report.check("manifest", false, format!("manifest.json does not parse: {e}"));
            None
        }
    };
    if !signature.is_empty() {
        if key.verify(&manifest_bytes, &signature) {
            report.check(
                "signature",
                true,
                format!("manifest.json is signed by key {} and unchanged since", key.key_id()),
            );
        } else {
            let named = manifest.as_ref().map(|m| m.signing_key_id.clone()).unwrap_or_default();
            let detail = if !named.is_empty() && named != key.key_id() {
                format!(
                    "the signature does not verify: the manifest names signing key {named}, you gave key {}; \
                     use that key, or the manifest was changed",
                    key.key_id()
                )
            } else {
                "the signature does not verify with this key: manifest.json or manifest.sig was changed".to_string()
            };
            report.check("signature", false, detail);
        }
    }
    let Some(manifest) = manifest else { return report };
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for file in &manifest.files {
        listed.insert(file.name.clone());
        match bundle.hash(&file.name, progress) {
            Ok(Some((sha256, bytes))) if sha256 == file.sha256 && bytes == file.bytes => {
                report.check(format!("file {}", file.name), true, format!("{bytes} bytes, SHA-256 {sha256}"));
            }
            Ok(Some((sha256, bytes))) => report.check(
                format!("file {}", file.name),
                false,
                format!(
                    "changed: SHA-256 {sha256} ({bytes} bytes), the manifest says {} ({} bytes)",
                    file.sha256, file.bytes
                ),
            ),
            Ok(None) => report.check(
                format!("file {}", file.name),
                false,
                "missing: the manifest lists it, the bundle lacks it",
            ),
            Err(e) => report.check(format!("file {}", file.name), false, format!("changed or damaged: {e}")),
        }
    }
    match bundle.central_directory_names() {
        Ok(all) => {
            let mut seen = BTreeSet::new();
            for name in &all {
                if !seen.insert(name) {
                    report.check(
                        format!("file {name}"),
                        false,
                        "duplicated: the bundle holds two entries of this name; a tampered copy may hide beside the original",
                    );
                }
            }
        }
        Err(e) => report.check("bundle", false, e),
    }
    for name in bundle.names() {
        if name != MANIFEST_NAME && name != SIGNATURE_NAME && !listed.contains(&name) && !name.ends_with('/') {
            report.check(format!("file {name}"), false, "added: the bundle holds it, the manifest does not list it");
        }
    }
    report.manifest = Some(manifest);
    report
}
