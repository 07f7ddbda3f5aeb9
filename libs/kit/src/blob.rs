//! Files kept for a service (complaint evidence, training materials)
//! through one interface: a directory for `kefu up` (or one shared volume),
//! S3-compatible object storage in production. Every file is sealed with
//! AES-256-GCM under the service's blob key before it leaves the process
//! (`KEFU_BLOB_KEYS`: the first key seals, all open), so neither the bucket
//! nor the directory holds a readable file; the key it was sealed under is
//! named in the file. Contents never reach a log.
use std::{path::PathBuf, sync::Arc, time::Duration};

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use async_trait::async_trait;
use clap::Args;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::keys::{KeyEntry, parse_key_list};

/// Where a service's files are kept (bytes as given; sealing is
/// [`Blobs`]'s).
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()>;
    /// `None` when there is no such file.
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Deleting a file that is not there is no error.
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
    /// For logs and readiness: `file` or `s3`.
    fn kind(&self) -> &'static str;
}

/// Keys are made by the services (ids): letters, digits, `-`, `_`, `/`
/// between segments; never `..` or a leading `/`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        })
}

fn check_key(key: &str) -> anyhow::Result<()> {
    anyhow::ensure!(valid_key(key), "not a blob key: {key:?}");
    Ok(())
}

/// A directory (`kefu up`'s data directory, or a volume every replica mounts).
pub struct FileBlobs {
    root: PathBuf,
}

impl FileBlobs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

#[async_trait]
impl BlobStore for FileBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        check_key(key)?;
        let path = self.root.join(key);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // Written whole, then renamed: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, &bytes).await?;
        let file = tokio::fs::File::open(&tmp).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        check_key(key)?;
        match tokio::fs::read(self.root.join(key)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        check_key(key)?;
        match tokio::fs::remove_file(self.root.join(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph, OSS/COS in S3 mode),
/// path-style requests signed with AWS Signature Version 4.
pub struct S3Blobs {
    endpoint: reqwest::Url,
    bucket: String,
    prefix: String,
    region: String,
    access_key: String,
    secret_key: String,
    http: reqwest::Client,
}

/// The largest file a store hands back (kept files are far smaller).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// URI-encodes a path segment as SigV4 wants it (unreserved kept).
fn uri_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SigV4 signature of a request: `headers` are the signed ones,
/// lower-case names with trimmed values, in any order.
pub fn sigv4_signature(
    secret_key: &str,
    region: &str,
    amz_date: &str,
    method: &str,
    canonical_uri: &str,
    headers: &[(&str, &str)],
    payload_sha256: &str,
) -> (String, String) {
    let mut hs: Vec<(&str, &str)> = headers.to_vec();
    hs.sort_by(|a, b| a.0.cmp(b.0));
    let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed: String = hs.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(";");
    let canonical = format!("{method}\n{canonical_uri}\n\n{canonical_headers}\n{signed}\n{payload_sha256}");
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let k = hmac(format!("AWS4{secret_key}").as_bytes(), date);
    let k = hmac(&k, region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    (hex::encode(hmac(&k, &to_sign)), signed)
}

impl S3Blobs {
    pub fn new(
        endpoint: &str,
        bucket: &str,
        prefix: &str,
        region: &str,
        access_key: &str,
        secret_key: &str,
    ) -> anyhow::Result<Self> {
        let endpoint = reqwest::Url::parse(endpoint)
            .map_err(|e| anyhow::anyhow!("KEFU_S3_ENDPOINT {endpoint:?} is not a URL: {e}"))?;
        anyhow::ensure!(
            matches!(endpoint.scheme(), "http" | "https") && endpoint.host_str().is_some(),
            "KEFU_S3_ENDPOINT must be an http:// or https:// address"
        );
        anyhow::ensure!(!bucket.is_empty() && valid_key(bucket), "not an S3 bucket name: {bucket:?}");
        let trimmed = prefix.trim_matches('/');
        anyhow::ensure!(trimmed.is_empty() || valid_key(trimmed), "not an S3 key prefix: {prefix:?}");
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            endpoint,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            region: region.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            http,
        })
    }

    /// Creates the bucket if it is not there (tests and first setups; an
    /// operator usually makes it).
    pub async fn create_bucket(&self) -> anyhow::Result<()> {
        let path = format!("{}/{}", self.endpoint.path().trim_end_matches('/'), uri_encode(&self.bucket));
        let r = self.signed(reqwest::Method::PUT, &path, None).await?;
        anyhow::ensure!(
            r.status().is_success() || r.status() == reqwest::StatusCode::CONFLICT,
            "object storage did not create the bucket: HTTP {}",
            r.status().as_u16()
        );
        Ok(())
    }

    fn path(&self, key: &str) -> String {
        let full = if self.prefix.is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) };
        let base = self.endpoint.path().trim_end_matches('/');
        let segs: Vec<String> = full.split('/').map(uri_encode).collect();
        format!("{base}/{}/{}", uri_encode(&self.bucket), segs.join("/"))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<reqwest::Response> {
        check_key(key)?;
        self.signed(method, &self.path(key), body).await
    }

    async fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<reqwest::Response> {
        let payload = body.as_ref().map_or_else(|| EMPTY_SHA256.to_owned(), |b| hex::encode(Sha256::digest(b)));
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let host = match self.endpoint.port() {
            Some(p) => format!("{}:{p}", self.endpoint.host_str().unwrap_or_default()),
            None => self.endpoint.host_str().unwrap_or_default().to_owned(),
        };
        let (signature, signed) = sigv4_signature(
            &self.secret_key,
            &self.region,
            &amz_date,
            method.as_str(),
            path,
            &[("host", &host), ("x-amz-content-sha256", &payload), ("x-amz-date", &amz_date)],
            &payload,
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/s3/aws4_request, SignedHeaders={signed}, Signature={signature}",
            self.access_key,
            &amz_date[..8],
            self.region
        );
        let mut url = self.endpoint.clone();
        url.set_path(path);
        let mut req = self
            .http
            .request(method, url)
            .header("x-amz-date", &amz_date)
            .header("x-amz-content-sha256", &payload)
            .header("authorization", auth);
        if let Some(b) = body {
            req = req.body(b);
        }
        // Errors name the status only: a response body could echo the key.
        req.send().await.map_err(|e| anyhow::anyhow!("object storage unreachable: {}", e.without_url()))
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let r = self.send(reqwest::Method::PUT, key, Some(bytes)).await?;
        anyhow::ensure!(r.status().is_success(), "object storage refused the write: HTTP {}", r.status().as_u16());
        Ok(())
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let r = self.send(reqwest::Method::GET, key, None).await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        anyhow::ensure!(r.status().is_success(), "object storage refused the read: HTTP {}", r.status().as_u16());
        // A file larger than any kept one is not read into memory.
        if r.content_length().is_some_and(|n| n > MAX_FILE_BYTES) {
            anyhow::bail!("object storage answered with a file larger than {MAX_FILE_BYTES} bytes");
        }
        let body = r.bytes().await?;
        anyhow::ensure!(body.len() as u64 <= MAX_FILE_BYTES, "object storage answered with an oversized file");
        Ok(Some(body.to_vec()))
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let r = self.send(reqwest::Method::DELETE, key, None).await?;
        anyhow::ensure!(
            r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND,
            "object storage refused the delete: HTTP {}",
            r.status().as_u16()
        );
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}

/// A store with sealing: what services use.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn BlobStore>,
    keys: Arc<Vec<(String, Aes256Gcm)>>,
}

const NONCE: usize = 12;

impl Blobs {
    pub fn new(store: Arc<dyn BlobStore>, keys: &[KeyEntry]) -> anyhow::Result<Self> {
        anyhow::ensure!(!keys.is_empty(), "KEFU_BLOB_KEYS names no key");
        let keys =
            keys.iter().map(|k| (k.kid.clone(), Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&k.bytes)))).collect();
        Ok(Self { store, keys: Arc::new(keys) })
    }

    pub fn kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Seals and stores `plain` under `key` (the key is bound to the file).
    pub async fn put(&self, key: &str, plain: &[u8]) -> anyhow::Result<()> {
        let (kid, cipher) = &self.keys[0];
        let mut nonce = [0u8; NONCE];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: key.as_bytes() })
            .map_err(|_| anyhow::anyhow!("sealing a file failed"))?;
        let kid = kid.as_bytes();
        let mut out = Vec::with_capacity(1 + kid.len() + NONCE + sealed.len());
        out.push(u8::try_from(kid.len()).map_err(|_| anyhow::anyhow!("key id too long"))?);
        out.extend_from_slice(kid);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        self.store.put(key, out).await
    }

    /// The file under `key`, opened; `None` when it is not there.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(sealed) = self.store.get(key).await? else { return Ok(None) };
        let n = usize::from(*sealed.first().ok_or_else(|| anyhow::anyhow!("file {key} is empty"))?);
        anyhow::ensure!(sealed.len() > 1 + n + NONCE, "file {key} is cut short");
        let kid = std::str::from_utf8(&sealed[1..=n]).map_err(|_| anyhow::anyhow!("file {key}: bad key id"))?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .ok_or_else(|| anyhow::anyhow!("file {key} was sealed under key {kid}, which KEFU_BLOB_KEYS lacks"))?;
        let nonce = &sealed[1 + n..1 + n + NONCE];
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: &sealed[1 + n + NONCE..], aad: key.as_bytes() })
            .map_err(|_| anyhow::anyhow!("file {key} does not open: altered, or moved from another key"))?;
        Ok(Some(plain))
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.store.delete(key).await
    }
}

/// Settings of a service that keeps files.
#[derive(Debug, Clone, Args, Default)]
pub struct BlobArgs {
    /// Where files go: `s3://BUCKET[/PREFIX]` (with `KEFU_S3_*`) or
    /// `file:///DIR` (a volume every replica mounts). Required by `kefu
    /// serve`; `kefu up` keeps them under its data directory.
    #[arg(long, env = "KEFU_BLOB_URL")]
    pub blob_url: Option<String>,
    /// The S3-compatible endpoint, e.g. `https://minio.internal:9000`.
    #[arg(long, env = "KEFU_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "KEFU_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long, env = "KEFU_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "KEFU_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Keys sealing the files, `KID:BASE64URL[,...]` (`kefu admin keygen
    /// blob`): the first seals, all open. Required by `kefu serve`.
    #[arg(long, env = "KEFU_BLOB_KEYS", hide_env_values = true)]
    pub blob_keys: Option<String>,
}

impl BlobArgs {
    /// Checks the settings without connecting.
    pub fn check(&self, embedded: bool) -> anyhow::Result<()> {
        if embedded && self.blob_url.is_none() {
            return Ok(());
        }
        self.store(None, "").map(drop)?;
        match &self.blob_keys {
            Some(k) => parse_key_list("KEFU_BLOB_KEYS", k).map(drop),
            None if embedded => Ok(()),
            None => anyhow::bail!("set KEFU_BLOB_KEYS (--blob-keys): `kefu admin keygen blob` makes one"),
        }
    }

    fn store(&self, embedded: Option<&crate::module::Embedded>, service: &str) -> anyhow::Result<Arc<dyn BlobStore>> {
        let url = match (&self.blob_url, embedded) {
            (Some(u), _) => u.clone(),
            (None, Some(e)) => {
                return Ok(Arc::new(FileBlobs::new(e.data_dir.join("blobs").join(service))));
            }
            (None, None) => anyhow::bail!("set KEFU_BLOB_URL (--blob-url): s3://BUCKET or file:///DIR"),
        };
        if let Some(dir) = url.strip_prefix("file://") {
            anyhow::ensure!(dir.starts_with('/'), "KEFU_BLOB_URL file:// needs an absolute directory");
            return Ok(Arc::new(FileBlobs::new(PathBuf::from(dir).join(service))));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            anyhow::bail!("KEFU_BLOB_URL must start with s3:// or file://");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let endpoint = self.s3_endpoint.as_deref().ok_or_else(|| anyhow::anyhow!("set KEFU_S3_ENDPOINT"))?;
        let access = self.s3_access_key_id.as_deref().ok_or_else(|| anyhow::anyhow!("set KEFU_S3_ACCESS_KEY_ID"))?;
        let secret =
            self.s3_secret_access_key.as_deref().ok_or_else(|| anyhow::anyhow!("set KEFU_S3_SECRET_ACCESS_KEY"))?;
        let prefix = if prefix.is_empty() { service.to_owned() } else { format!("{prefix}/{service}") };
        Ok(Arc::new(S3Blobs::new(endpoint, bucket, &prefix, &self.s3_region, access, secret)?))
    }

    /// The service's sealed store.
    pub fn blobs(&self, embedded: Option<&crate::module::Embedded>, service: &str) -> anyhow::Result<Blobs> {
        let keys = match (&self.blob_keys, embedded) {
            (Some(k), _) => parse_key_list("KEFU_BLOB_KEYS", k)?,
            (None, Some(e)) => parse_key_list("blob keys", &e.key_file("blob.keys")?)?,
            (None, None) => anyhow::bail!("set KEFU_BLOB_KEYS (--blob-keys): `kefu admin keygen blob` makes one"),
        };
        Blobs::new(self.store(embedded, service)?, &keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigv4_matches_the_published_get_object_example() {
        // The S3 documentation's "GET Object" example of Signature Version 4.
        let (sig, signed) = sigv4_signature(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "20130524T000000Z",
            "GET",
            "/test.txt",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ],
            EMPTY_SHA256,
        );
        assert_eq!(signed, "host;range;x-amz-content-sha256;x-amz-date");
        assert_eq!(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    }

    #[test]
    fn keys_that_could_leave_the_store_are_refused() {
        for bad in ["", "/etc/passwd", "a/../b", "..", "a//b", "a b", "a/./b", "x\\y"] {
            assert!(!valid_key(bad), "{bad:?}");
        }
        for good in ["0190-abc/def_1.bin", "complaints/2026/x"] {
            assert!(valid_key(good), "{good:?}");
        }
    }
}
