//! Small JSON records kept in the lake one file each, under `ROOT/date=YYYY-MM-DD/`: the
//! query service's audit log and the delivery stage's `alert_deliveries`. They are few,
//! written by stages other than the ingester, and read as JSON-lines tables.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path;
use serde::Serialize;

use crate::{Lake, LakeError};

/// Writes records under one root, now or in the background.
#[derive(Clone)]
pub struct JsonRecords {
    lake: Lake,
    root: &'static str,
    /// Writes started by `write_later`, for `flush`.
    pending: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl JsonRecords {
    pub fn new(lake: Lake, root: &'static str) -> Self {
        Self { lake, root, pending: Arc::default() }
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Stores one record in the partition of `date` (`YYYY-MM-DD`).
    pub async fn write<T: Serialize>(&self, date: &str, record: &T) -> Result<(), LakeError> {
        self.lake.put(&self.fresh_path(date), encode(record)).await
    }

    /// Stores one record under `name` in the partition of `date`, replacing a record of the
    /// same name: writing it again after a crash leaves one record, not two.
    pub async fn write_named<T: Serialize>(&self, date: &str, name: &str, record: &T) -> Result<(), LakeError> {
        self.lake.put(&self.path(date, name), encode(record)).await
    }

    fn path(&self, date: &str, name: &str) -> Path {
        Path::from(format!("{}/date={date}/{name}.json", self.root))
    }

    /// A new record's path: a ULID never names two records.
    fn fresh_path(&self, date: &str) -> Path {
        self.path(date, &ulid::Ulid::new().to_string())
    }

    /// Stores a record in the background (from places that cannot wait); `on_error` hears
    /// of a failure. `false` when called outside a Tokio runtime (nothing is written).
    pub fn write_later<T, E>(&self, date: String, record: T, on_error: E) -> bool
    where
        T: Serialize,
        E: FnOnce(LakeError) + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return false };
        let (path, line) = (self.fresh_path(&date), encode(&record));
        let lake = self.lake.clone();
        let handle = runtime.spawn(async move {
            if let Err(e) = lake.put(&path, line).await {
                on_error(e);
            }
        });
        let mut pending = self.pending.lock().expect("no panics while holding the lock");
        pending.retain(|h| !h.is_finished());
        pending.push(handle);
        true
    }

    /// Waits for every background write.
    pub async fn flush(&self) {
        let handles: Vec<_> = std::mem::take(&mut *self.pending.lock().expect("no panics while holding the lock"));
        for handle in handles {
            let _ = handle.await;
        }
    }
}

/// One record as one JSON line.
fn encode<T: Serialize>(record: &T) -> Bytes {
    let mut line = serde_json::to_vec(record).expect("a record serializes");
    line.push(b'\n');
    Bytes::from(line)
}
