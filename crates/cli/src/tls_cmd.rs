//! HTTPS for `serve`: the certificate files it uses (`--tls-cert`/`--tls-key`, or the pair
//! `init --dev-tls` made in the data directory) and that development pair itself.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use custodia_server::tls::{Certificates, TlsFiles};

/// The development pair's place in a data directory.
pub(crate) fn dev_files(data_dir: &Path) -> TlsFiles {
    TlsFiles {
        cert: data_dir.join("tls").join("cert.pem"),
        key: data_dir.join("tls").join("key.pem"),
    }
}

/// Makes a self-signed certificate for `localhost`, `127.0.0.1` and `::1` and its key in the
/// data directory (the key readable only by its owner). For development and tests only: no
/// browser or client trusts it unless told to. Refuses to replace an existing pair.
pub(crate) fn make_dev_pair(data_dir: &Path) -> anyhow::Result<TlsFiles> {
    let files = dev_files(data_dir);
    anyhow::ensure!(
        !files.cert.exists() && !files.key.exists(),
        "{} already holds a TLS pair; remove it to make a new one",
        data_dir.join("tls").display()
    );
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let pair = rcgen::generate_simple_self_signed(names).context("making a self-signed certificate")?;
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_new(&files.cert, pair.cert.pem().as_bytes(), 0o644)?;
    write_new(&files.key, pair.key_pair.serialize_pem().as_bytes(), 0o600)?;
    Ok(files)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The TLS client of the CLI's API commands: it trusts the certificates in the PEM file
/// `CUSTODIA_CACERT` names (as `VAULT_CACERT` does for Vault's CLI; e.g. a data directory's
/// `tls/cert.pem` from `init --dev-tls`), else the system's roots.
pub(crate) fn client() -> anyhow::Result<tokio_rustls::TlsConnector> {
    custodia_server::tls::client_connector("CUSTODIA_CACERT").map_err(|e| anyhow::anyhow!("{e}"))
}

/// SHA-256 (hex) of the first certificate in a PEM file, as `principal bind-cert` binds it.
pub(crate) fn certificate_sha256(path: &Path) -> anyhow::Result<String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{}", path.display()))?
        .next()
        .with_context(|| format!("{}: no PEM certificate in it", path.display()))?
        .with_context(|| format!("{}", path.display()))?;
    // one the handshake will never accept binds its key to nothing (a v1 certificate, as a
    // plain `openssl x509 -req` makes, was bound and locked its key out; review)
    if let Err(e) = webpki::EndEntityCert::try_from(&cert) {
        anyhow::bail!(
            "{}: not a certificate a TLS handshake accepts ({e:?}): a client certificate is X.509 v3, with extendedKeyUsage clientAuth",
            path.display()
        );
    }
    Ok(hex::encode(custodia_crypto::sha256(cert.as_ref())))
}

/// The certificates `serve` uses: the files named on the command line, else the data
/// directory's development pair if it has one, else none (plain HTTP).
pub(crate) fn certificates(
    data_dir: &Path,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> anyhow::Result<Option<Arc<Certificates>>> {
    let files = match (cert, key) {
        (Some(cert), Some(key)) => TlsFiles { cert, key },
        (None, None) => {
            let dev = dev_files(data_dir);
            if !dev.cert.exists() && !dev.key.exists() {
                return Ok(None);
            }
            dev
        }
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    Certificates::load(files)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("loading the TLS certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    /// A certificate the handshake will never take is refused before its digest is bound;
    /// one it takes gives its SHA-256.
    #[test]
    fn only_a_certificate_a_handshake_accepts_is_bound() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        let body = base64::engine::general_purpose::STANDARD.encode([0x30u8, 0x03, 0x02, 0x01, 0x01]);
        std::fs::write(
            &junk,
            format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"),
        )
        .unwrap();
        let refused = super::certificate_sha256(&junk).unwrap_err().to_string();
        assert!(
            refused.contains("not a certificate a TLS handshake accepts"),
            "{refused}"
        );
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["client".to_owned()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.self_signed(&key).unwrap();
        let good = dir.path().join("good.pem");
        std::fs::write(&good, cert.pem()).unwrap();
        let digest = super::certificate_sha256(&good).unwrap();
        assert_eq!(digest, hex::encode(custodia_crypto::sha256(cert.der())));
    }
}
