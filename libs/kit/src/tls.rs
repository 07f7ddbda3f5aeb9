//! TLS for the gRPC listeners and the calls between services.
//!
//! - A server given `KEFU_TLS_CERT` and `KEFU_TLS_KEY` (PEM files) serves
//!   TLS only; it re-reads the files when they change (a renewed
//!   certificate takes effect on the next connection, no restart).
//! - With `KEFU_TLS_CLIENT_CA` it also demands a client certificate signed
//!   by that CA (mutual TLS between the gateway and the services).
//! - Without a certificate a server listens in plaintext only on a loopback
//!   address, unless `KEFU_ALLOW_PLAINTEXT` says the network already
//!   encrypts (a service mesh with mutual TLS).
//! - Calls to `https://` peers trust `KEFU_TLS_CA` and present the same
//!   certificate as client identity when one is configured.
use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime},
};

use clap::Args;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        crypto::ring as provider,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
        sign::CertifiedKey,
    },
    server::TlsStream,
};

/// TLS settings of a gRPC server and of its calls to other services.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Server certificate chain (PEM); with `--tls-key` the gRPC port
    /// serves TLS only. Re-read when the file changes.
    #[arg(long, env = "KEFU_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "KEFU_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) whose client certificates the server demands: mutual TLS.
    #[arg(long, env = "KEFU_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// CA (PEM) trusted for calls to `https://` services.
    #[arg(long, env = "KEFU_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Serve plaintext on a non-loopback address (only where the network
    /// itself encrypts, e.g. a service mesh with mutual TLS).
    #[arg(long, env = "KEFU_ALLOW_PLAINTEXT", default_value_t = false)]
    pub allow_plaintext: bool,
}

impl TlsArgs {
    /// The server's TLS configuration, `None` for plaintext; refuses
    /// plaintext off loopback unless allowed, and half a certificate.
    pub fn server_config(&self, listen: SocketAddr) -> anyhow::Result<Option<Arc<ServerConfig>>> {
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            (None, None) => {
                if self.tls_client_ca.is_some() {
                    anyhow::bail!("KEFU_TLS_CLIENT_CA needs KEFU_TLS_CERT and KEFU_TLS_KEY");
                }
                if !listen.ip().is_loopback() && !self.allow_plaintext {
                    anyhow::bail!(
                        "gRPC on {listen} would be plaintext: set KEFU_TLS_CERT and KEFU_TLS_KEY, listen on loopback, \
                         or set KEFU_ALLOW_PLAINTEXT=true where a service mesh encrypts"
                    );
                }
                return Ok(None);
            }
            _ => anyhow::bail!("set both KEFU_TLS_CERT and KEFU_TLS_KEY (one was given without the other)"),
        };
        let resolver = Arc::new(ReloadingCert::load(cert, key)?);
        let builder = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()?;
        let mut config = match &self.tls_client_ca {
            Some(ca) => {
                let roots = Arc::new(roots(ca)?);
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots, Arc::new(provider::default_provider()))
                        .build()?;
                builder.with_client_cert_verifier(verifier).with_cert_resolver(resolver)
            }
            None => builder.with_no_client_auth().with_cert_resolver(resolver),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// Makes calls to `https://` peers use these settings (once per process).
    pub fn install_client(&self) -> anyhow::Result<()> {
        ClientTlsArgs { tls_ca: self.tls_ca.clone(), tls_cert: self.tls_cert.clone(), tls_key: self.tls_key.clone() }
            .install()
    }
}

/// TLS settings of a process that only calls kefu services (the gateway,
/// `kefu health`).
#[derive(Debug, Clone, Default, Args)]
pub struct ClientTlsArgs {
    /// CA (PEM) trusted for calls to `https://` services.
    #[arg(long, env = "KEFU_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to services that demand one.
    #[arg(long, env = "KEFU_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "KEFU_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

impl ClientTlsArgs {
    /// Makes calls to `https://` services use these settings (once per
    /// process).
    pub fn install(&self) -> anyhow::Result<()> {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        if let Some(ca) = &self.tls_ca {
            let pem =
                std::fs::read(ca).map_err(|e| anyhow::anyhow!("cannot read KEFU_TLS_CA {}: {e}", ca.display()))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let read = |p: &Path| std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()));
                tls = tls.identity(tonic::transport::Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => anyhow::bail!("set both KEFU_TLS_CERT and KEFU_TLS_KEY (one was given without the other)"),
        }
        let _ = CLIENT.set(tls);
        Ok(())
    }
}

static CLIENT: OnceLock<tonic::transport::ClientTlsConfig> = OnceLock::new();

/// The TLS settings for calls to `https://` services, if installed.
pub(crate) fn client_config() -> Option<tonic::transport::ClientTlsConfig> {
    CLIENT.get().cloned()
}

fn roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(path).map_err(|e| anyhow::anyhow!("cannot read CA {}: {e}", path.display()))?
    {
        roots.add(cert.map_err(|e| anyhow::anyhow!("CA {}: {e}", path.display()))?)?;
    }
    if roots.is_empty() {
        anyhow::bail!("CA file {} holds no certificate", path.display());
    }
    Ok(roots)
}

/// The server certificate, re-read when its files change.
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    stamp: (Option<SystemTime>, Option<SystemTime>),
    checked: std::time::Instant,
    key: Arc<CertifiedKey>,
}

/// How often the files' modification times are looked at.
const RECHECK: Duration = Duration::from_secs(1);

fn stamp(cert: &Path, key: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(cert), m(key))
}

fn load_key(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("cannot read KEFU_TLS_CERT {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("KEFU_TLS_CERT {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("KEFU_TLS_CERT {} holds no certificate", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read a private key from KEFU_TLS_KEY {}: {e}", key.display()))?;
    let signer = provider::sign::any_supported_type(&private)
        .map_err(|e| anyhow::anyhow!("KEFU_TLS_KEY {}: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| anyhow::anyhow!("KEFU_TLS_KEY does not belong to KEFU_TLS_CERT: {e}"))?;
    Ok(Arc::new(certified))
}

impl ReloadingCert {
    fn load(cert: PathBuf, key: PathBuf) -> anyhow::Result<Self> {
        let loaded = load_key(&cert, &key)?;
        let now = Loaded { stamp: stamp(&cert, &key), checked: std::time::Instant::now(), key: loaded };
        Ok(Self { cert, key, current: Mutex::new(now) })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.checked.elapsed() >= RECHECK {
            cur.checked = std::time::Instant::now();
            let now = stamp(&self.cert, &self.key);
            if now != cur.stamp {
                match load_key(&self.cert, &self.key) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                        cur.key = k;
                        cur.stamp = now;
                    }
                    // Half-written files during a renewal: keep the old one
                    // and look again on a later connection.
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS certificate changed but does not load; keeping the old one")
                    }
                }
            }
        }
        Some(cur.key.clone())
    }
}

/// Accepted connections with TLS handshakes done, each in a task of its own
/// (a slow client cannot hold up the others), bounded to ten seconds.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, sender) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = sender.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            });
            if tx.is_closed() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Plain accepted connections, with TCP_NODELAY (replies are not held back
/// waiting for the client's delayed ACK).
pub fn incoming_plain(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = Result<TcpStream, io::Error>> + Send + 'static {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        let s = s?;
        let _ = s.set_nodelay(true);
        Ok(s)
    })
}

/// A private CA's certificate and the certificates it signed, in PEM.
pub struct DevCerts {
    pub ca_cert: String,
    /// (name, certificate, private key) for each name asked for.
    pub certs: Vec<(String, String, String)>,
}

/// A fresh CA named `ca_name` and, for each of `names`, a certificate for
/// that host name (and `localhost`, `127.0.0.1`) valid for server and
/// client authentication for `days` days: TLS and mutual TLS between the
/// services where no PKI provides certificates (Compose, tests).
pub fn dev_certs(ca_name: &str, names: &[String], days: u32) -> anyhow::Result<DevCerts> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::days(i64::from(days));
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = until;
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut certs = Vec::new();
    for name in names {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(vec![name.clone(), "localhost".into(), "127.0.0.1".into()])?;
        p.distinguished_name.push(DnType::CommonName, name.as_str());
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = now - time::Duration::hours(1);
        p.not_after = until;
        let cert = p.signed_by(&key, &ca_cert, &ca_key)?;
        certs.push((name.clone(), cert.pem(), key.serialize_pem()));
    }
    // The CA's key is dropped here: it signs this batch and nothing else.
    Ok(DevCerts { ca_cert: ca_cert.pem(), certs })
}
