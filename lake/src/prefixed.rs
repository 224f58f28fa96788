//! A lake under a prefix of a bucket (`s3://bucket/prefix`): `object_store`'s `PrefixStore`,
//! with one repair. Its `get_opts` (which `head` goes through since object_store 0.13)
//! answers with the object's full path, prefix included, where every other call answers with
//! paths relative to the prefix. DataFusion checks that a file it asked for is the file it
//! got by comparing those paths, so over S3 every lake file was dropped from every query
//! (the query e2e on a real S3 server found it). The requested path is the right answer.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

#[derive(Debug)]
pub struct Prefixed(PrefixStore<Arc<dyn ObjectStore>>);

impl Prefixed {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self(PrefixStore::new(store, prefix))
    }
}

impl std::fmt::Display for Prefixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Prefixed {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let mut result = self.0.get_opts(location, options).await?;
        result.meta.location = location.clone();
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.0.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.0.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn a_head_under_a_prefix_answers_with_the_path_asked_for() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let store = Prefixed::new(inner.clone(), "lake");
        let path = Path::from("events/date=2026-12-06/hour=01/a.parquet");
        store.put(&path, PutPayload::from_static(b"x")).await.unwrap();
        assert_eq!(store.head(&path).await.unwrap().location, path);
        assert_eq!(store.get(&path).await.unwrap().meta.location, path);
        let listed: Vec<ObjectMeta> = futures::TryStreamExt::try_collect(store.list(None)).await.unwrap();
        assert_eq!(listed[0].location, path);
        assert!(inner.head(&Path::from("lake/events/date=2026-12-06/hour=01/a.parquet")).await.is_ok());
    }
}
