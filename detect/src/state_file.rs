//! The detector's snapshot file: the engine state and the Kafka offsets it corresponds to.
//!
//! On restart the detector restores the state and resumes each partition at the snapshot's
//! offset (not the group's committed one, which may be newer), so the events after the
//! snapshot are read again and rebuild exactly what was lost. Alerts they raise again carry
//! the same ids as before.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::EngineState;

/// Bumped when the file's layout changes incompatibly.
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read the detector state {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "the detector state {path} is not readable ({reason}); move it away to start with empty windows and first-seen values"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write the detector state {path}: {source}; check the directory of detect.state_path")]
    Write { path: PathBuf, source: std::io::Error },
}

/// One snapshot.
#[derive(Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    /// The topic the offsets are for; a snapshot of another topic is ignored.
    pub topic: String,
    /// Next offset to read, per partition.
    pub offsets: BTreeMap<i32, i64>,
    pub engine: EngineState,
}

impl Snapshot {
    pub fn new(topic: &str, offsets: BTreeMap<i32, i64>, engine: EngineState) -> Self {
        Self { format: FORMAT, topic: topic.to_string(), offsets, engine }
    }

    /// Reads the snapshot at `path`; `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Self>, StateFileError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateFileError::Read { path: path.to_owned(), source }),
        };
        let snapshot: Snapshot = serde_json::from_slice(&bytes)
            .map_err(|e| StateFileError::Corrupt { path: path.to_owned(), reason: e.to_string() })?;
        if snapshot.format != FORMAT {
            return Err(StateFileError::Corrupt {
                path: path.to_owned(),
                reason: format!("format {} is not this version's {FORMAT}", snapshot.format),
            });
        }
        Ok(Some(snapshot))
    }

    /// Writes the snapshot so that a crash at any point leaves either the old or the new
    /// file whole: a temporary file, synced, renamed over the old one, directory synced.
    /// Returns the bytes written.
    pub fn save(&self, path: &Path) -> Result<u64, StateFileError> {
        let failed = |source| StateFileError::Write { path: path.to_owned(), source };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(failed)?;
        let temporary = path.with_extension("tmp");
        let bytes = serde_json::to_vec(self).expect("the state always serializes");
        {
            let mut file = std::fs::File::create(&temporary).map_err(failed)?;
            file.write_all(&bytes).map_err(failed)?;
            file.sync_all().map_err(failed)?;
        }
        // The new state is written beside the old one: a restart loads the old one and reads
        // the events after it again, raising the same alerts (same ids) once more.
        fail::fail_point!("detect::snapshot_before_rename", |_| {
            mcpsiem_runtime::failpoint::crash("detect::snapshot_before_rename")
        });
        std::fs::rename(&temporary, path).map_err(failed)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(failed)?;
        Ok(bytes.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_snapshot_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("detect/state.json");
        assert!(Snapshot::load(&path).unwrap().is_none());
        let snapshot = Snapshot::new("mcp.events", BTreeMap::from([(0, 42), (2, 7)]), EngineState::default());
        snapshot.save(&path).unwrap();
        let back = Snapshot::load(&path).unwrap().unwrap();
        assert_eq!(back.topic, "mcp.events");
        assert_eq!(back.offsets, BTreeMap::from([(0, 42), (2, 7)]));
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{\"format\": 1, \"topic\": ").unwrap();
        let error = Snapshot::load(&path).err().expect("a damaged file is refused").to_string();
        assert!(error.contains("move it away"), "{error}");
    }
}
