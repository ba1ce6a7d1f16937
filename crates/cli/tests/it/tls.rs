//! HTTPS: `init --dev-tls` and `serve` speaking TLS only, with the security headers, and a
//! renewed certificate served without a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Server, custodia};

fn init_dev_tls(dir: &Path) {
    let out = custodia()
        .args(["init", "--json", "--dev-tls", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A TLS client that trusts only the certificate in `cert`.
fn client_trusting(cert: &Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    // Every connection a full handshake: a resumed session would not show the certificate.
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `GET /healthz` over TLS as `localhost`; the raw answer, or the handshake's error.
async fn get_healthz(connector: &tokio_rustls::TlsConnector, addr: std::net::SocketAddr) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn dev_tls_serves_https_only_and_a_renewed_certificate_without_a_restart() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    init_dev_tls(a.path());
    init_dev_tls(b.path());
    let (cert_a, key_a) = (a.path().join("tls/cert.pem"), a.path().join("tls/key.pem"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key is its owner's alone");
    }
    // A second --dev-tls does not replace a pair.
    let again = custodia()
        .args(["init", "--json", "--dev-tls", "--data-dir"])
        .arg(a.path())
        .output()
        .unwrap();
    assert!(!again.status.success());

    let server = Server::try_start(a.path(), None, &[]).unwrap();
    let trusts_a = client_trusting(&cert_a);
    let answer = get_healthz(&trusts_a, server.addr).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    for header in [
        "strict-transport-security: max-age=31536000",
        "x-content-type-options: nosniff",
        "cache-control: no-store",
        "content-security-policy: default-src 'none'",
    ] {
        assert!(lower.contains(header), "{header} in {answer}");
    }

    // Plain HTTP on the same port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut got)).await;
    assert!(!got.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&got));

    // The files are renewed (here: b's pair written over a's): new connections get the new
    // certificate within a few seconds, the server never stops.
    std::fs::write(&key_a, std::fs::read(b.path().join("tls/key.pem")).unwrap()).unwrap();
    std::fs::write(&cert_a, std::fs::read(b.path().join("tls/cert.pem")).unwrap()).unwrap();
    let trusts_b = client_trusting(&b.path().join("tls/cert.pem"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if get_healthz(&trusts_b, server.addr).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the renewed certificate was never served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = get_healthz(&trusts_a, server.addr).await.unwrap_err();
    assert!(err.to_ascii_lowercase().contains("certificate"), "{err}");

    // A broken pair written over it is refused and the last good one kept.
    std::fs::write(&cert_a, b"not a certificate").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(get_healthz(&trusts_b, server.addr).await.is_ok());
}

#[test]
fn the_cli_speaks_https_trusting_custodia_cacert() {
    let dir = tempfile::tempdir().unwrap();
    init_dev_tls(dir.path());
    let server = Server::try_start(dir.path(), None, &[]).unwrap();
    let url = format!("https://localhost:{}", server.addr.port());
    let list = |cacert: Option<&Path>| {
        let mut cmd = custodia();
        cmd.args(["principal", "list", "--url", &url, "--token", "cst_not_a_key"]);
        if let Some(c) = cacert {
            cmd.env("CUSTODIA_CACERT", c);
        }
        cmd.output().unwrap()
    };
    // Trusting the dev certificate: the TLS session works and the server answers (401: the
    // key is made up), so the CLI reached it over HTTPS.
    let out = list(Some(&dir.path().join("tls/cert.pem")));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("unauthenticated") || text.contains("401"), "{text}");
    // Without it, the system's roots do not vouch for a self-signed certificate.
    let out = list(None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect") || err.contains("certificate"), "{err}");
}

#[test]
fn tls_flags_go_together_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = custodia()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent.pem",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-key"), "{err}");
    let out = custodia()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent-cert.pem",
            "--tls-key",
            "/nonexistent-key.pem",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("loading the TLS certificate") && err.contains("nonexistent-cert.pem"),
        "{err}"
    );
}

/// A client CA and a client certificate it issued, written under `dir`: (CA path, client
/// certificate path, the client's chain and key for rustls).
fn client_ca(
    dir: &Path,
    name: &str,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    Vec<CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![format!("{name}.example")]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let (ca_path, cert_path) = (dir.join(format!("{name}-ca.pem")), dir.join(format!("{name}.pem")));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (ca_path, cert_path, vec![cert.der().clone()], der)
}

/// A TLS client trusting `server_cert`, presenting `client` (chain and key) if given.
fn mtls_client(
    server_cert: &Path,
    client: Option<(Vec<CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>)>,
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(server_cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `GET /v1/principals` with `token` over `connector`; the status.
async fn list_principals(connector: &tokio_rustls::TlsConnector, addr: std::net::SocketAddr, token: &str) -> u16 {
    let mut conn =
        crate::http_client::Connection::open_tls(addr, "localhost", &format!("localhost:{}", addr.port()), connector)
            .await
            .unwrap();
    conn.send("GET", "/v1/principals", Some(token), None, &[])
        .await
        .unwrap()
        .status
}

#[tokio::test]
async fn a_key_bound_to_a_client_certificate_works_only_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = custodia()
        .args(["init", "--json", "--dev-tls", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let admin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let admin = admin["admin_token"].as_str().unwrap().to_owned();
    let (ca, cert, chain, key) = client_ca(dir.path(), "checkout");
    let (_, _, other_chain, other_key) = client_ca(dir.path(), "intruder");
    let server_cert = data.join("tls/cert.pem");
    let log = dir.path().join("server.log");
    let server = Server::try_start_logged(&data, &["--tls-client-ca", ca.to_str().unwrap()], &log).unwrap();
    let url = format!("https://localhost:{}", server.addr.port());

    // An admin key (not bound) works with or without a client certificate.
    let plain = mtls_client(&server_cert, None);
    let with_cert = mtls_client(&server_cert, Some((chain.clone(), key.clone_key())));
    assert_eq!(list_principals(&plain, server.addr, &admin).await, 200);
    assert_eq!(list_principals(&with_cert, server.addr, &admin).await, 200);

    // A key bound to the checkout certificate works only over a connection presenting it.
    let cacert = [("CUSTODIA_CACERT", server_cert.to_str().unwrap())];
    let out = custodia()
        .envs(cacert)
        .args([
            "principal",
            "create",
            "--name",
            "checkout",
            "--role",
            "key_manager",
            "--url",
            &url,
            "--token",
            &admin,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, key_token) = (
        created["principal_id"].as_str().unwrap(),
        created["api_key"].as_str().unwrap(),
    );
    let out = custodia()
        .envs(cacert)
        .args([
            "principal",
            "bind-cert",
            id,
            "--cert",
            cert.to_str().unwrap(),
            "--url",
            &url,
            "--token",
            &admin,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("{id}: client certificate bound")),
        "the command says what it did"
    );
    assert_eq!(list_principals(&with_cert, server.addr, key_token).await, 200);
    assert_eq!(
        list_principals(&plain, server.addr, key_token).await,
        401,
        "no certificate"
    );
    // A certificate from another CA fails the handshake; the key never gets a hearing.
    let intruder = mtls_client(&server_cert, Some((other_chain, other_key)));
    let refused = crate::http_client::Connection::open_tls(
        server.addr,
        "localhost",
        &format!("localhost:{}", server.addr.port()),
        &intruder,
    )
    .await;
    let status = match refused {
        Err(_) => None,
        Ok(mut conn) => conn
            .send("GET", "/v1/principals", Some(key_token), None, &[])
            .await
            .ok()
            .map(|r| r.status),
    };
    assert_ne!(status, Some(200), "a certificate of an unknown CA is refused");
    // and the server's log says why (a v1 certificate or one without clientAuth failed every
    // connection with nothing logged)
    let mut logged = String::new();
    for _ in 0..50 {
        logged = std::fs::read_to_string(&log).unwrap_or_default();
        if logged.contains("a client certificate was refused in the TLS handshake") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        logged.contains("a client certificate was refused in the TLS handshake") && logged.contains("UnknownIssuer"),
        "{logged}"
    );
    // Binding needs manage_principals; a malformed digest is a 400.
    let mut conn = crate::http_client::Connection::open_tls(server.addr, "localhost", "localhost", &plain)
        .await
        .unwrap();
    let reply = conn
        .send(
            "POST",
            &format!("/v1/principals/{id}/client-cert"),
            Some(&admin),
            Some(br#"{"sha256": "zz"}"#.to_vec()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 400);
    // A key cannot bind a certificate to itself: it would lock itself out of this very
    // connection (a schemathesis run did so to the bootstrap key).
    let list = conn
        .send("GET", "/v1/principals", Some(&admin), None, &[])
        .await
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
    let own = list["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bootstrap-admin")
        .unwrap()["principal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = format!(r#"{{"sha256": "{}"}}"#, "ab".repeat(32));
    let reply = conn
        .send(
            "POST",
            &format!("/v1/principals/{own}/client-cert"),
            Some(&admin),
            Some(digest.into_bytes()),
            &[],
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (reply.status, v["error"]["code"].as_str()),
        (422, Some("own_key")),
        "{v}"
    );
    let still = conn
        .send("GET", "/v1/principals", Some(&admin), None, &[])
        .await
        .unwrap();
    assert_eq!(still.status, 200, "the key still works");
}
