//! Blob storage: received (and quarantined) packets, behind one [`BlobStore`] built on the `object_store`
//! crate. By default a local filesystem under `<data_dir>/blobs` (`LocalFileSystem` with fsync: a blob is
//! written to a staging file, synced, renamed into place and its directory synced, so a crash leaves it
//! complete or absent); with `[blobs] url = "s3://bucket/prefix"` an S3-compatible object store (an S3 PUT is
//! atomic: the object exists whole or not at all).
//!
//! Keys: `packets/<RID>.tpkt`. Uploads in progress stay local files (`<data_dir>/blobs/uploads/`) until their
//! last byte arrived and their digest matched; then the packet is put here in one piece.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig};
use tessera_packet::ids::Rid;

use crate::settings::BlobSettings;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The `[blobs]` settings are not usable.
    #[error("blob storage settings: {0}")]
    Config(String),
    /// No blob under this key.
    #[error("blob {key} not found in {store}")]
    NotFound {
        /// The key.
        key: String,
        /// Which store (no credentials).
        store: String,
    },
    /// The object store failed.
    #[error("blob storage {store}: {op} {key}: {source}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// The key.
        key: String,
        /// Which store (no credentials).
        store: String,
        /// The object store's error.
        source: Box<object_store::Error>,
    },
}

/// The server's blob storage.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    describe: String,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("store", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The key of a received packet.
pub fn packet_key(rid: &Rid) -> String {
    format!("packets/{rid}.tpkt")
}

impl BlobStore {
    /// A local store rooted at `root` (created if missing), with fsync on every write.
    pub fn local(root: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(root)
            .map_err(|e| BlobError::Config(format!("cannot create {}: {e}", root.display())))?;
        let fs = LocalFileSystem::new_with_prefix(root)
            .map_err(|e| BlobError::Config(format!("{}: {e}", root.display())))?
            .with_fsync(true);
        Ok(Self {
            inner: Arc::new(fs),
            describe: format!("local folder {}", root.display()),
        })
    }

    /// The store the settings name: S3-compatible when `blobs.url` is `s3://bucket[/prefix]`, a local folder
    /// when it is `file:///path`, else `<data_dir>/blobs`.
    pub fn from_settings(blobs: &BlobSettings, data_dir: &Path) -> Result<Self, BlobError> {
        let Some(url) = blobs.url.as_deref() else {
            return Self::local(&data_dir.join("blobs"));
        };
        if let Some(path) = url.strip_prefix("file://") {
            return Self::local(Path::new(path));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(BlobError::Config(format!(
                "blobs.url {url:?} must start with s3:// (S3-compatible) or file:// (a local folder)"
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BlobError::Config(format!("blobs.url {url:?} names no bucket")));
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(blobs.region.as_deref().unwrap_or("us-east-1"))
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &blobs.endpoint {
            b = b
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        match (&blobs.access_key_id, &blobs.secret_access_key) {
            (Some(id), Some(secret)) => {
                b = b
                    .with_access_key_id(id.expose())
                    .with_secret_access_key(secret.expose());
            }
            (None, None) => {}
            _ => {
                return Err(BlobError::Config(
                    "set both blobs.access_key_id and blobs.secret_access_key, or neither".into(),
                ));
            }
        }
        let s3 = b
            .build()
            .map_err(|e| BlobError::Config(format!("S3 store for {url}: {e}")))?;
        let describe = format!(
            "S3 bucket {bucket} (prefix {prefix:?}) at {}",
            blobs.endpoint.as_deref().unwrap_or("AWS")
        );
        let inner: Arc<dyn ObjectStore> = if prefix.trim_matches('/').is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix.trim_matches('/')))
        };
        Ok(Self { inner, describe })
    }

    /// What the store is (for logs and messages; never credentials).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn path(&self, key: &str) -> Result<ObjectPath, BlobError> {
        ObjectPath::parse(key).map_err(|e| BlobError::Config(format!("invalid blob key {key:?}: {e}")))
    }

    fn err(&self, op: &'static str, key: &str) -> impl FnOnce(object_store::Error) -> BlobError + '_ {
        let key = key.to_owned();
        move |source| match source {
            object_store::Error::NotFound { .. } => BlobError::NotFound {
                key,
                store: self.describe.clone(),
            },
            source => BlobError::Store {
                op,
                key,
                store: self.describe.clone(),
                source: Box::new(source),
            },
        }
    }

    /// Writes a blob whole (replacing one with the same key): after `Ok` it is durable; after a crash it is
    /// either the complete new content or not there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        let path = self.path(key)?;
        self.inner
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(self.err("writing", key))?;
        Ok(())
    }

    /// Reads a blob whole.
    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let path = self.path(key)?;
        let got = self.inner.get(&path).await.map_err(self.err("reading", key))?;
        got.bytes().await.map_err(self.err("reading", key))
    }

    /// The size of a blob, or `None` when there is none.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path(key)?;
        match self.inner.head(&path).await.map_err(self.err("reading", key)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(BlobError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a blob (no error when it is already gone).
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        match self.inner.delete(&path).await.map_err(self.err("deleting", key)) {
            Ok(()) | Err(BlobError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_put_get_replace_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::local(&dir.path().join("b")).unwrap();
        assert!(matches!(
            s.get("packets/x.tpkt").await,
            Err(BlobError::NotFound { .. })
        ));
        assert_eq!(s.size("packets/x.tpkt").await.unwrap(), None);
        s.put("packets/x.tpkt", Bytes::from_static(b"one")).await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("b/packets/x.tpkt")).unwrap(),
            b"one",
            "the local layout is <root>/<key>"
        );
        s.put("packets/x.tpkt", Bytes::from_static(b"second"))
            .await
            .unwrap();
        assert_eq!(
            s.get("packets/x.tpkt").await.unwrap(),
            Bytes::from_static(b"second")
        );
        assert_eq!(s.size("packets/x.tpkt").await.unwrap(), Some(6));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("b/packets"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no staging file left: {leftovers:?}");
        s.delete("packets/x.tpkt").await.unwrap();
        s.delete("packets/x.tpkt").await.unwrap();
        assert_eq!(s.size("packets/x.tpkt").await.unwrap(), None);
    }

    #[test]
    fn settings_errors_name_the_problem() {
        let d = Path::new("/tmp");
        let bad = |url: &str| {
            let b = BlobSettings {
                url: Some(url.into()),
                ..BlobSettings::default()
            };
            BlobStore::from_settings(&b, d).unwrap_err().to_string()
        };
        assert!(bad("gs://x").contains("s3://"));
        assert!(bad("s3:///p").contains("no bucket"));
        let half = BlobSettings {
            url: Some("s3://b".into()),
            access_key_id: Some(crate::settings::Secret::new("id")),
            ..BlobSettings::default()
        };
        assert!(
            BlobStore::from_settings(&half, d)
                .unwrap_err()
                .to_string()
                .contains("both")
        );
        let ok = BlobSettings {
            url: Some("s3://bucket/some/prefix".into()),
            endpoint: Some("http://127.0.0.1:9".into()),
            ..BlobSettings::default()
        };
        let s = BlobStore::from_settings(&ok, d).unwrap();
        assert!(s.describe().contains("bucket") && s.describe().contains("some/prefix"));
    }
}
