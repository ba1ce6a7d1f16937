//! HTTPS: `serve` terminates TLS itself with rustls (aws-lc-rs), from a certificate chain and
//! a private key in PEM files. The files are watched: a renewed certificate (a new pair written
//! over the old, e.g. by an ACME client) is served to new connections within
//! [`RELOAD_EVERY`], with no restart; a pair that does not load is logged and the last good
//! one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the certificate files are looked at for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Where the certificate chain and its key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The pair in force, replaced when the files change.
#[derive(Debug)]
pub struct Certificates {
    files: TlsFiles,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>, Option<SystemTime>)>,
    /// The CAs whose client certificates are asked for (mTLS), if any: a connection may then
    /// present one, and keys bound to a certificate work only with theirs.
    client_cas: std::sync::OnceLock<Arc<rustls::RootCertStore>>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Loads a PEM certificate chain and private key (PKCS#8, PKCS#1 or SEC1), checking that the
/// key is the certificate's.
pub fn load_pair(files: &TlsFiles) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("{}: {e}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", files.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in it", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| format!("{}: {e}", files.key.display()))?;
    let signing = any_supported_type(&key).map_err(|e| format!("{}: {e}", files.key.display()))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match()
        .map_err(|e| format!("{} does not go with {}: {e}", files.key.display(), files.cert.display()))?;
    Ok(pair)
}

/// What a certificate's X.509 fields say of it, read by webpki (the parser rustls verifies
/// with): its validity (Unix ms) and whether it is its own issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateFields {
    pub not_before: i64,
    pub not_after: i64,
    pub self_signed: bool,
}

/// Reads `der`'s fields. webpki shows a certificate's validity only through the check it makes
/// of it, the first it makes of the certificate itself (after a list of distrusted keys): asked
/// at the start of time it names the notBefore, at the end of time the notAfter. Should that
/// order ever change, the second answer is not "expired" and the certificate is reported
/// unreadable rather than valid for ever (fail closed).
pub fn certificate_fields(der: &CertificateDer<'_>) -> Result<CertificateFields, String> {
    use webpki::{EndEntityCert, Error, KeyUsage};
    let cert = EndEntityCert::try_from(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let check_at = |secs: u64| {
        let time = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(secs));
        cert.verify_for_usage(&[], &[], &[], time, KeyUsage::server_auth(), None, None)
            .err()
    };
    let ms = |t: rustls::pki_types::UnixTime| i64::try_from(t.as_secs().saturating_mul(1000)).unwrap_or(i64::MAX);
    let not_after = match check_at(u64::MAX) {
        Some(Error::CertExpired { not_after, .. }) => ms(not_after),
        other => {
            return Err(format!(
                "its validity could not be read{}",
                other.map(|e| format!(": {e}")).unwrap_or_default()
            ));
        }
    };
    let not_before = match check_at(0) {
        Some(Error::CertNotValidYet { not_before, .. }) => ms(not_before),
        // Valid from the epoch on.
        _ => 0,
    };
    Ok(CertificateFields {
        not_before,
        not_after,
        self_signed: cert.issuer() == cert.subject(),
    })
}

impl Certificates {
    /// The files the pair is loaded from.
    #[must_use]
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The pair in `files`, loaded now (an error names the file at fault).
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, String> {
        let pair = load_pair(&files)?;
        let stamps = (modified(&files.cert), modified(&files.key));
        Ok(Arc::new(Self {
            current: RwLock::new((Arc::new(pair), stamps.0, stamps.1)),
            files,
            client_cas: std::sync::OnceLock::new(),
        }))
    }

    /// Asks clients for a certificate issued by one of the CAs in the PEM file `path`
    /// (optional for the client: keys not bound to a certificate work without one).
    pub fn ask_client_certificates(&self, path: &Path) -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(&e))? {
            roots.add(cert.map_err(|e| fail(&e))?).map_err(|e| fail(&e))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no PEM certificate in it", path.display()));
        }
        self.client_cas
            .set(Arc::new(roots))
            .map_err(|_| "client CAs are set once".to_owned())
    }

    /// Loads the files again if either changed since the last load; returns whether a new
    /// pair is now in force.
    pub fn reload_if_changed(&self) -> bool {
        let stamps = (modified(&self.files.cert), modified(&self.files.key));
        let changed = self.current.read().map(|c| (c.1, c.2) != stamps).unwrap_or(false);
        if !changed {
            return false;
        }
        match load_pair(&self.files) {
            Ok(pair) => {
                if let Ok(mut c) = self.current.write() {
                    *c = (Arc::new(pair), stamps.0, stamps.1);
                }
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                // Half-written files are common while a renewal runs: the next look may succeed.
                tracing::warn!(error = %e, "the TLS certificate files changed but do not load; the last good pair is kept");
                false
            }
        }
    }

    /// A rustls server configuration serving the pair in force (HTTP/1.1, TLS 1.2 and 1.3).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match self.client_cas.get() {
            Some(roots) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| e.to_string())?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c.0))
    }
}

/// A TLS client that trusts the certificates in the PEM file the environment variable
/// `ca_env` names (e.g. a private CA, or `init --dev-tls`'s `tls/cert.pem`), else the system's
/// roots. The CLI's API commands use it with `CUSTODIA_CACERT`, webhook deliveries with
/// `CUSTODIA_WEBHOOK_CACERT`.
pub fn client_connector(ca_env: &str) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    match std::env::var_os(ca_env) {
        Some(path) => {
            let path = PathBuf::from(path);
            let fail = |e: &dyn std::fmt::Display| format!("{ca_env}: {}: {e}", path.display());
            for cert in CertificateDer::pem_file_iter(&path).map_err(|e| fail(&e))? {
                roots.add(cert.map_err(|e| fail(&e))?).map_err(|e| fail(&e))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "no certificate to trust: set {ca_env} to a CA certificate file (PEM)"
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
