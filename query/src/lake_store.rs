//! The lake's files as DataFusion reads them: the local file system, with the Parquet files that
//! a compaction hides or has retired left out of every listing (see
//! [`auditlake_core::compaction`]). The state is read before each listing, so a listing of a
//! day's folder is the set before a compaction's swap or the set after it, never a mix.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use auditlake_core::LakeLayout;
use auditlake_core::compaction::CompactionState;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use futures::stream::{self, BoxStream, StreamExt};

/// A local file system that hides excluded lake files from listings.
#[derive(Debug)]
pub struct LakeStore {
    inner: Arc<LocalFileSystem>,
    /// The lake, canonical (as table URLs are).
    root: PathBuf,
}

impl LakeStore {
    pub fn new(lake: &std::path::Path) -> std::io::Result<LakeStore> {
        Ok(LakeStore {
            inner: Arc::new(LocalFileSystem::new()),
            root: std::fs::canonicalize(lake)?,
        })
    }

    /// The state's bytes (empty when there is none).
    fn state_bytes(root: &std::path::Path) -> Result<Vec<u8>> {
        match std::fs::read(LakeLayout::new(root).compaction_state()) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(generic(e)),
        }
    }

    fn excluded(bytes: &[u8]) -> Result<HashSet<String>> {
        excluded_names(bytes).map_err(generic)
    }
}

/// The names of the files a compaction state (its bytes; empty: none) excludes. Every Parquet
/// file of the lake has a name of its own (a commit id is part of it), so the name is enough;
/// paths are not canonicalized here (a hidden file may not exist yet).
pub(crate) fn excluded_names(bytes: &[u8]) -> std::io::Result<HashSet<String>> {
    if bytes.is_empty() {
        return Ok(HashSet::new());
    }
    let state: CompactionState = serde_json::from_slice(bytes)
        .map_err(|e| std::io::Error::other(format!("damaged compaction state ({e})")))?;
    Ok(state
        .excluded()
        .into_iter()
        .filter_map(|rel| rel.rsplit('/').next())
        .map(str::to_string)
        .collect())
}

fn generic(e: std::io::Error) -> datafusion::object_store::Error {
    datafusion::object_store::Error::Generic {
        store: "lake",
        source: Box::new(e),
    }
}

fn keep(m: &ObjectMeta, excluded: &HashSet<String>) -> bool {
    !m.location.filename().is_some_and(|f| excluded.contains(f))
}

impl fmt::Display for LakeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LakeStore({})", self.root.display())
    }
}

#[async_trait::async_trait]
impl ObjectStore for LakeStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        // The state, the listing, the state again: when the two reads agree, no compaction
        // announced or swapped anything while the folder was read, so dropping what the state
        // excludes leaves exactly the set before or after a swap. Otherwise, list again.
        let (inner, root, prefix) = (Arc::clone(&self.inner), self.root.clone(), prefix.cloned());
        stream::once(async move {
            loop {
                let before = Self::state_bytes(&root)?;
                let listed: Vec<Result<ObjectMeta>> = inner.list(prefix.as_ref()).collect().await;
                let after = Self::state_bytes(&root)?;
                if before == after {
                    let excluded = Self::excluded(&before)?;
                    return Ok::<_, datafusion::object_store::Error>(
                        listed
                            .into_iter()
                            .filter(|m| !matches!(m, Ok(m) if !keep(m, &excluded)))
                            .collect::<Vec<_>>(),
                    );
                }
            }
        })
        .flat_map(|r| match r {
            Ok(items) => stream::iter(items).boxed(),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        loop {
            let before = Self::state_bytes(&self.root)?;
            let mut r = self.inner.list_with_delimiter(prefix).await?;
            if before == Self::state_bytes(&self.root)? {
                let excluded = Self::excluded(&before)?;
                r.objects.retain(|m| keep(m, &excluded));
                return Ok(r);
            }
        }
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
