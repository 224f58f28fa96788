//! The object store under the lake, with durability where the store does not give it.
//!
//! Object stores (S3, GCS, Azure) make an object visible only once its upload completed, and
//! a completed upload is durable. `object_store`'s local file system writes through a
//! temporary file and a rename but never calls fsync, so a power cut could leave a renamed
//! but empty file: [`Lake`] fsyncs files and their directories itself when the lake is local.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// Why a lake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake location `{location}` is not usable: {reason}")]
    Location { location: String, reason: String },
    #[error("lake {operation} of `{path}` failed: {source}")]
    Store {
        operation: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("lake fsync of `{path}` failed: {source} (is the disk full or read-only?)")]
    Sync {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lake record `{path}` is corrupt: {reason}; move it aside and restart")]
    CorruptRecord { path: String, reason: String },
}

impl LakeError {
    pub(crate) fn store(operation: &'static str, path: &Path, source: object_store::Error) -> Self {
        Self::Store { operation, path: path.to_string(), source }
    }

    /// True when the error is the store saying the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Store { source: object_store::Error::NotFound { .. }, .. })
    }
}

/// A handle on the lake root.
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    /// Set when the lake is on the local file system: the directory to fsync under.
    local_root: Option<PathBuf>,
    location: String,
}

impl Lake {
    /// Opens a lake at a local path or an object-store URL (`file://`, `s3://bucket/prefix`,
    /// `gs://…`, `az://…`, `abfss://…`). Cloud credentials come from the usual environment
    /// variables of each provider (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub fn open(location: &str) -> Result<Self, LakeError> {
        Self::open_with(location, &std::collections::BTreeMap::new())
    }

    /// [`Lake::open`] with the object store's own options (`aws_endpoint`,
    /// `aws_allow_http`, `aws_conditional_put`, `google_service_account`, `azure_storage_account_name`…,
    /// as `object_store` names them), which take precedence over the environment.
    pub fn open_with(location: &str, options: &std::collections::BTreeMap<String, String>) -> Result<Self, LakeError> {
        let bad = |reason: String| LakeError::Location { location: location.to_string(), reason };
        let unknown = |key: &str, provider: &str| {
            bad(format!("`{key}` is not an option of {provider} object stores (lake.options; docs/scaling.md)"))
        };
        let local_path = match location.split_once("://") {
            None => Some(PathBuf::from(location)),
            Some(("file", rest)) => Some(PathBuf::from(rest)),
            Some(_) => None,
        };
        if let Some(path) = local_path {
            if let Some(key) = options.keys().next() {
                return Err(bad(format!("`{key}` is an object-store option, and this lake is a local directory")));
            }
            std::fs::create_dir_all(&path).map_err(|e| bad(format!("cannot create the directory: {e}")))?;
            let root = path.canonicalize().map_err(|e| bad(e.to_string()))?;
            let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| bad(e.to_string()))?;
            return Ok(Self { store: Arc::new(store), local_root: Some(root), location: location.to_string() });
        }
        let url = url::Url::parse(location).map_err(|e| bad(format!("not a URL: {e}")))?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" | "s3a" => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(location);
                for (key, value) in options {
                    let key = key.parse().map_err(|_| unknown(key, "S3"))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            "gs" => {
                let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(location);
                for (key, value) in options {
                    let key = key.parse().map_err(|_| unknown(key, "Google Cloud Storage"))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(location);
                for (key, value) in options {
                    let key = key.parse().map_err(|_| unknown(key, "Azure"))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            other => {
                return Err(bad(format!("unsupported scheme `{other}`; use a path, file://, s3://, gs:// or az://")));
            }
        };
        // A URL with a path (s3://bucket/prefix) puts the lake under that prefix.
        let prefix = url.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { store } else { Arc::new(crate::prefixed::Prefixed::new(store, prefix)) };
        Ok(Self { store, local_root: None, location: location.to_string() })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// The local directory of the lake, when it is on the local file system.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Writes an object and returns once it is durable.
    pub async fn put(&self, path: &Path, bytes: Bytes) -> Result<(), LakeError> {
        self.store.put(path, PutPayload::from(bytes)).await.map_err(|e| LakeError::store("write", path, e))?;
        self.sync(&[path]).await
    }

    /// Writes an object only if none exists at `path`; returns false if one did. This is the
    /// lake's compare-and-swap: two writers racing for the same name cannot both win.
    pub async fn create(&self, path: &Path, bytes: Bytes) -> Result<bool, LakeError> {
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(path, PutPayload::from(bytes), options).await {
            Ok(_) => {
                self.sync(&[path]).await?;
                Ok(true)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(LakeError::store("create", path, e)),
        }
    }

    /// Moves an object and returns once the move is durable.
    pub async fn rename(&self, from: &Path, to: &Path) -> Result<(), LakeError> {
        self.store.rename(from, to).await.map_err(|e| LakeError::store("rename", from, e))?;
        self.sync(&[to]).await
    }

    /// Reads an object; `None` if it does not exist.
    pub async fn get(&self, path: &Path) -> Result<Option<Bytes>, LakeError> {
        match self.store.get(path).await {
            Ok(result) => result.bytes().await.map(Some).map_err(|e| LakeError::store("read", path, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(LakeError::store("read", path, e)),
        }
    }

    pub async fn exists(&self, path: &Path) -> Result<bool, LakeError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(LakeError::store("stat", path, e)),
        }
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, path: &Path) -> Result<(), LakeError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(LakeError::store("delete", path, e)),
        }
    }

    /// Every object under `prefix`, recursively.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, LakeError> {
        match self.store.list(Some(prefix)).try_collect::<Vec<_>>().await {
            Ok(objects) => Ok(objects),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(LakeError::store("list", prefix, e)),
        }
    }

    /// fsyncs the files and their directories when the lake is local; a no-op on object
    /// stores, whose completed writes are already durable.
    async fn sync(&self, paths: &[&Path]) -> Result<(), LakeError> {
        let Some(root) = &self.local_root else { return Ok(()) };
        let files: Vec<PathBuf> = paths.iter().map(|p| root.join(p.as_ref())).collect();
        tokio::task::spawn_blocking(move || {
            for file in files {
                sync_file_and_dir(&file)
                    .map_err(|source| LakeError::Sync { path: file.display().to_string(), source })?;
            }
            Ok(())
        })
        .await
        .expect("the fsync task does not panic")
    }
}

fn sync_file_and_dir(file: &FsPath) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let path = Path::from("_lake/commits/t/00001/00000000000000000000.json");
        assert!(lake.create(&path, Bytes::from_static(b"first")).await.unwrap());
        assert!(!lake.create(&path, Bytes::from_static(b"second")).await.unwrap());
        assert_eq!(lake.get(&path).await.unwrap().unwrap(), Bytes::from_static(b"first"));
        lake.rename(&path, &Path::from("moved/x.json")).await.unwrap();
        assert!(!lake.exists(&path).await.unwrap());
        assert_eq!(lake.list(&Path::from("moved")).await.unwrap().len(), 1);
        lake.delete(&path).await.unwrap();
    }

    #[test]
    fn unknown_schemes_are_refused_with_the_supported_list() {
        let err = Lake::open("ftp://host/lake").unwrap_err().to_string();
        assert!(err.contains("s3://"), "{err}");
    }
}
