//! Avatar images (SPEC §9): checked by content, stored under random names in
//! a folder (`file://`, served at `/avatars/<name>`) or an S3-compatible
//! bucket (`s3://bucket/prefix`, signed with SigV4 by `object_store`), and
//! named to clients by `avatars.public_url` + name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
};

use crate::config::AvatarsConfig;
use crate::secret;

/// How long one upload or delete may take.
const STORE_TIMEOUT: Duration = Duration::from_secs(15);

/// An image kind phoneauth accepts, known by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageKind {
    pub extension: &'static str,
    pub content_type: &'static str,
}

const JPEG: ImageKind = ImageKind {
    extension: "jpg",
    content_type: "image/jpeg",
};
const PNG: ImageKind = ImageKind {
    extension: "png",
    content_type: "image/png",
};
const GIF: ImageKind = ImageKind {
    extension: "gif",
    content_type: "image/gif",
};
const WEBP: ImageKind = ImageKind {
    extension: "webp",
    content_type: "image/webp",
};

/// What the bytes are, by their signature — never by a file name or a
/// declared type.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some(JPEG),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(PNG),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(GIF),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some(WEBP),
        _ => None,
    }
}

/// The kind of a stored avatar's name (`<32 hex>.<ext>`), or `None` for any
/// other name: the only names `/avatars/` serves.
pub fn kind_of_name(name: &str) -> Option<ImageKind> {
    let (stem, ext) = name.split_once('.')?;
    let ok = stem.len() == 32 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !ok {
        return None;
    }
    [JPEG, PNG, GIF, WEBP]
        .into_iter()
        .find(|k| k.extension == ext)
}

#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error("avatar storage: {0}")]
    Storage(String),
    #[error("avatar storage timed out")]
    TimedOut,
}

/// The configured avatar store.
pub struct Avatars {
    objects: Arc<dyn ObjectStore>,
    prefix: String,
    public_url: String,
    /// A file store's folder, which `/avatars/` serves.
    local_dir: Option<PathBuf>,
    pub max_bytes: usize,
}

impl Avatars {
    /// From `[avatars]`; `database_url` places the default folder beside an
    /// SQLite database.
    pub fn from_config(cfg: &AvatarsConfig, database_url: &str) -> Result<Self, String> {
        if let Some(rest) = cfg.store.strip_prefix("s3://") {
            return Self::s3(cfg, rest);
        }
        let dir = match cfg.store.strip_prefix("file://") {
            Some(dir) => PathBuf::from(dir),
            None => default_dir(database_url),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("avatars.store: cannot create {}: {e}", dir.display()))?;
        let objects =
            LocalFileSystem::new_with_prefix(&dir).map_err(|e| format!("avatars.store: {e}"))?;
        let public_url = if cfg.public_url.is_empty() {
            "/avatars/".to_owned()
        } else {
            cfg.public_url.clone()
        };
        Ok(Self {
            objects: Arc::new(objects),
            prefix: String::new(),
            public_url,
            local_dir: Some(dir),
            max_bytes: cfg.max_bytes,
        })
    }

    fn s3(cfg: &AvatarsConfig, bucket_and_prefix: &str) -> Result<Self, String> {
        let (bucket, prefix) = bucket_and_prefix
            .split_once('/')
            .unwrap_or((bucket_and_prefix, ""));
        if bucket.is_empty() {
            return Err("avatars.store: s3:// needs a bucket name".into());
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(cfg.secret_access_key.expose())
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(STORE_TIMEOUT)
                    .with_connect_timeout(Duration::from_secs(3))
                    .with_allow_http(cfg.endpoint.starts_with("http://")),
            );
        if !cfg.endpoint.is_empty() {
            // Path-style addressing works on every S3-compatible service.
            b = b
                .with_endpoint(&cfg.endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let objects = b.build().map_err(|e| format!("avatars.store: {e}"))?;
        Ok(Self {
            objects: Arc::new(objects),
            prefix: prefix.trim_matches('/').to_owned(),
            public_url: cfg.public_url.clone(),
            local_dir: None,
            max_bytes: cfg.max_bytes,
        })
    }

    /// Stores an image under a fresh random name and returns the name.
    pub async fn put(&self, bytes: Vec<u8>, kind: ImageKind) -> Result<String, AvatarError> {
        let name = format!("{}.{}", secret::random_hex(16), kind.extension);
        // A bucket serves the type it was given; a folder is served by
        // name (`/avatars/`), and its store takes no attributes.
        let mut attributes = Attributes::new();
        if self.local_dir.is_none() {
            attributes.insert(Attribute::ContentType, kind.content_type.into());
        }
        let opts = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        let path = self.path(&name);
        let put = self.objects.put_opts(&path, PutPayload::from(bytes), opts);
        match tokio::time::timeout(STORE_TIMEOUT, put).await {
            Ok(Ok(_)) => Ok(name),
            Ok(Err(e)) => Err(AvatarError::Storage(e.to_string())),
            Err(_) => Err(AvatarError::TimedOut),
        }
    }

    /// Deletes a stored avatar; one already gone is no error.
    pub async fn delete(&self, name: &str) -> Result<(), AvatarError> {
        if kind_of_name(name).is_none() {
            return Ok(());
        }
        let path = self.path(name);
        match tokio::time::timeout(STORE_TIMEOUT, self.objects.delete(&path)).await {
            Ok(Ok(())) | Ok(Err(object_store::Error::NotFound { .. })) => Ok(()),
            Ok(Err(e)) => Err(AvatarError::Storage(e.to_string())),
            Err(_) => Err(AvatarError::TimedOut),
        }
    }

    /// The address clients load a stored avatar from.
    pub fn url(&self, name: &str) -> String {
        let base = self.public_url.trim_end_matches('/');
        format!("{base}/{name}")
    }

    /// The folder `/avatars/` serves, for a file store.
    pub fn local_dir(&self) -> Option<&Path> {
        self.local_dir.as_deref()
    }

    fn path(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }
}

/// `avatars` beside an SQLite database file; in the working directory for
/// any other database.
fn default_dir(database_url: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest));
    match file.map(Path::new).and_then(Path::parent) {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("avatars"),
        _ => PathBuf::from("avatars"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_bytes_alone() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(JPEG));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(PNG));
        assert_eq!(sniff(b"GIF89a...."), Some(GIF));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(WEBP));
        assert_eq!(sniff(b"<svg xmlns=...>"), None);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn only_stored_names_are_names() {
        let name = format!("{}.png", "a".repeat(32));
        assert_eq!(kind_of_name(&name), Some(PNG));
        assert_eq!(kind_of_name("../phoneauth.db"), None);
        assert_eq!(kind_of_name(&format!("{}.svg", "a".repeat(32))), None);
        assert_eq!(kind_of_name(&format!("{}.png", "A".repeat(32))), None);
    }

    #[tokio::test]
    async fn a_file_store_keeps_replaces_and_deletes_avatars() {
        let dir = std::env::temp_dir().join(format!("phoneauth-avatars-{}", secret::random_hex(6)));
        let cfg = AvatarsConfig {
            store: format!("file://{}", dir.display()),
            ..AvatarsConfig::default()
        };
        let avatars = Avatars::from_config(&cfg, "sqlite://x.db").expect("store");
        let name = avatars.put(b"GIF89a..".to_vec(), GIF).await.expect("put");
        assert_eq!(kind_of_name(&name), Some(GIF));
        assert_eq!(std::fs::read(dir.join(&name)).expect("file"), b"GIF89a..");
        assert_eq!(avatars.url(&name), format!("/avatars/{name}"));
        avatars.delete(&name).await.expect("delete");
        assert!(!dir.join(&name).exists());
        avatars
            .delete(&name)
            .await
            .expect("deleting a deleted one is fine");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_default_folder_is_beside_an_sqlite_database() {
        assert_eq!(
            default_dir("sqlite:///var/lib/phoneauth/phoneauth.db?mode=rwc"),
            PathBuf::from("/var/lib/phoneauth/avatars")
        );
        assert_eq!(
            default_dir("sqlite://phoneauth.db"),
            PathBuf::from("avatars")
        );
        assert_eq!(default_dir("postgres://db/x"), PathBuf::from("avatars"));
    }
}
