//! An insider with the database file alone (no root key) tries to hide what they did: tail
//! truncation, every checkpoint deleted, a rewrite with recomputed leaf hashes, a swapped
//! public key row, a deleted signing key. `audit verify` with the pinned key or a trusted
//! checkpoint catches each, and the server refuses to start on each. The witness refuses a
//! checkpoint inconsistent with the last one it cosigned.

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custodia_audit::note::{Checkpoint, ED25519_TYPE, NoteSigner};
use serde_json::{Value, json};

use crate::audit::{attacker, copy_of, leaf, verify_with};
use crate::support::{Server, Vault};

/// Traffic with allows and denies from two principals; returns the auditor's key.
pub(crate) async fn traffic(server: &Server, token: &str, from: usize, to: usize) {
    let mut admin = server.client(token).await;
    for i in from..to {
        let path = format!("/v1/subjects/cust_{i}/records/customers");
        let body = json!({"purpose": "order_fulfillment", "fields": {"name": format!("N{i}")}});
        assert_eq!(admin.post(&path, body).await.0, 201);
        assert_eq!(admin.get(&format!("{path}?purpose=order_fulfillment")).await.0, 200);
        assert_eq!(admin.get(&format!("{path}?purpose=marketing_email")).await.0, 403);
    }
}

/// The newest checkpoint once it covers at least `size` entries (the server signs every second).
pub(crate) async fn checkpoint_of_at_least(server: &Server, token: &str, size: i64) -> Value {
    let mut admin = server.client(token).await;
    for _ in 0..100 {
        let (status, v) = admin.get("/v1/audit/checkpoint").await;
        if status == 200 && v["tree_size"].as_i64().unwrap() >= size {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of {size} entries");
}

/// Whether writes to `path` (a subject's customers) come to be refused with 503
/// `audit_log_diverged` within ten seconds: the server stopped its log (fail closed).
async fn stops_answering(client: &mut crate::support::Client, path: &str) -> bool {
    let body = json!({"purpose": "order_fulfillment", "fields": {"name": "A"}});
    for _ in 0..100 {
        let (status, v) = client.raw_unchecked("POST", path, Some(body.clone())).await;
        if status == 503 {
            assert_eq!(v["error"]["code"], "audit_log_diverged");
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

pub(crate) async fn sql(dir: &Path, statements: &[&str]) {
    let db = attacker(dir).await;
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(*s))
            .execute(&db)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    db.close().await;
}

/// Triggers an attacker drops first (the append-only guards of the log and its checkpoints).
pub(crate) const DROP_CHECKPOINT_GUARDS: &str = "DROP TRIGGER IF EXISTS audit_checkpoints_no_delete";

pub(crate) fn refuses_to_start(dir: &Path, extra: &[&str]) -> String {
    match Server::try_start(dir, None, extra) {
        Ok(_) => panic!("the server started on a tampered log"),
        Err(printed) => printed,
    }
}

fn file_digest(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["custodia.db", "custodia.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.extend(custodia_audit::leaf_hash(&bytes));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insider_with_the_database_file_is_caught_and_the_server_refuses_to_start() {
    let vault = Vault::init();
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 3).await;
    checkpoint_of_at_least(&server, &vault.token, 9).await;
    traffic(&server, &vault.token, 3, 6).await;
    // A checkpoint obtained before the attack, kept by the operator elsewhere.
    let before_attack = checkpoint_of_at_least(&server, &vault.token, 18).await;
    let trusted = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(trusted.path(), before_attack["note"].as_str().unwrap()).unwrap();
    let trusted_path = trusted.path().to_str().unwrap();
    server.terminate();
    let key = vault.audit_key.as_str();

    // Verify needs a key from outside the database, never writes, and passes on the real log.
    let out = crate::support::custodia()
        .args(["audit", "verify", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "verify without a pinned key must refuse to run"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-key"));
    let before = file_digest(vault.path());
    let (ok, out) = verify_with(vault.path(), key, &["--trusted-checkpoint", trusted_path]);
    assert!(ok && out.contains("1 trusted checkpoints extended"), "{out}");
    assert_eq!(file_digest(vault.path()), before, "verify wrote to the database");
    // Another key pinned (or the checkpoint log signed anew by another): a finding, exit 1,
    // as with the checkpoint log moved aside; never "cannot run" (2), which a gate may skip
    let other = Vault::init();
    let out = crate::support::custodia()
        .args([
            "audit",
            "verify",
            "--public-key",
            other.audit_key.as_str(),
            "--data-dir",
        ])
        .arg(vault.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("NOT intact") && printed.contains("the key given is another vault's"),
        "{printed}"
    );
    // the note as `jq -r .note` saves it, a newline after its own: the same note
    let saved = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(saved.path(), format!("{}\n", before_attack["note"].as_str().unwrap())).unwrap();
    let (ok, out) = verify_with(
        vault.path(),
        key,
        &["--trusted-checkpoint", saved.path().to_str().unwrap()],
    );
    assert!(ok && out.contains("1 trusted checkpoints extended"), "{out}");
    let out = crate::support::custodia()
        .args(["audit", "verify", "--trust-database-key", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));

    // 1. Tail truncation: every entry and checkpoint after the first checkpoint deleted, the
    //    sequence reset. The database alone now looks whole; the trusted checkpoint, the
    //    checkpoint log and the server's start check do not agree.
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    let first: i64 = sqlx::query_scalar("SELECT MIN(tree_size) FROM audit_checkpoints")
        .fetch_one(&db)
        .await
        .unwrap();
    db.close().await;
    sql(
        copy.path(),
        &[
            DROP_CHECKPOINT_GUARDS,
            &format!("DELETE FROM audit_log WHERE seq > {first}"),
            &format!("DELETE FROM audit_checkpoints WHERE tree_size > {first}"),
            &format!("UPDATE sqlite_sequence SET seq = {first} WHERE name = 'audit_log'"),
            &format!("DELETE FROM audit_subject_index WHERE seq > {first}"),
            &format!("UPDATE audit_index_state SET upto = MIN(upto, {first})"),
        ],
    )
    .await;
    let (ok, out) = verify_with(copy.path(), key, &["--trusted-checkpoint", trusted_path]);
    assert!(!ok && out.contains("entries were deleted"), "truncation: {out}");
    let log = copy.path().join("audit-checkpoints.log");
    let (ok, out) = verify_with(copy.path(), key, &["--trusted-checkpoint", log.to_str().unwrap()]);
    assert!(!ok && out.contains("entries were deleted"), "truncation: {out}");
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("entries were deleted"), "{printed}");

    // 2. A deny entry deleted, another principal's read re-attributed with its leaf hash
    //    recomputed, the rest renumbered, every checkpoint deleted.
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    let deny: i64 = sqlx::query_scalar("SELECT MIN(seq) FROM audit_log WHERE decision = 'deny'")
        .fetch_one(&db)
        .await
        .unwrap();
    let (seq, entry): (i64, String) =
        sqlx::query_as("SELECT seq, entry FROM audit_log WHERE decision = 'allow' AND action = 'record.list' LIMIT 1")
            .fetch_one(&db)
            .await
            .unwrap();
    let principal = serde_json::from_str::<Value>(&entry).unwrap()["principal"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged = entry.replace(&principal, "prn_someone_else");
    sqlx::query("UPDATE audit_log SET entry = ?, leaf = ?, principal = 'prn_someone_else' WHERE seq = ?")
        .bind(&forged)
        .bind(leaf(&forged))
        .bind(seq)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    sql(
        copy.path(),
        &[
            DROP_CHECKPOINT_GUARDS,
            &format!("DELETE FROM audit_log WHERE seq = {deny}"),
            &format!("UPDATE audit_log SET seq = -(seq - 1) WHERE seq > {deny}"),
            "UPDATE audit_log SET seq = -seq WHERE seq < 0",
            "DELETE FROM audit_checkpoints",
            "DELETE FROM audit_subject_index",
            "UPDATE audit_index_state SET upto = 0",
        ],
    )
    .await;
    // The database alone (its checkpoint log moved away): a log with no checkpoint fails.
    let log = copy.path().join("audit-checkpoints.log");
    let moved = copy.path().join("elsewhere.log");
    std::fs::rename(&log, &moved).unwrap();
    let (ok, out) = verify_with(copy.path(), key, &[]);
    assert!(
        !ok && out.contains("no checkpoint"),
        "rewrite without checkpoints: {out}"
    );
    std::fs::rename(&moved, &log).unwrap();
    // verify reads the data directory's checkpoint log by default.
    let (ok, out) = verify_with(copy.path(), key, &[]);
    assert!(!ok && out.contains("audit-checkpoints.log"), "{out}");
    let (ok, out) = verify_with(copy.path(), key, &["--trusted-checkpoint", trusted_path]);
    assert!(!ok && out.contains("does not match the entries"), "rewrite: {out}");
    // The checkpoint log's newest covers one entry more than the log now holds.
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("entries were deleted"), "{printed}");

    // 3. The public key row swapped for the attacker's, and the rewritten log re-signed with
    //    the attacker's key: the pinned key does not sign it, the server sees the swap.
    let attacker_key = NoteSigner::from_seed("custodia-audit", ED25519_TYPE, &[66; 32]).unwrap();
    let db = attacker(copy.path()).await;
    let leaves: Vec<Vec<u8>> = sqlx::query_scalar("SELECT leaf FROM audit_log ORDER BY seq")
        .fetch_all(&db)
        .await
        .unwrap();
    let mut range = custodia_audit::CompactRange::default();
    for l in &leaves {
        range.push(l.as_slice().try_into().unwrap());
    }
    let note = attacker_key
        .sign(&Checkpoint::new("custodia-audit", range.size(), range.root()).text())
        .unwrap()
        .to_text();
    sqlx::query("INSERT INTO audit_checkpoints (tree_size, root, at, note) VALUES (?, ?, 1, ?)")
        .bind(range.size() as i64)
        .bind(range.root().to_vec())
        .bind(&note)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE meta SET value = ? WHERE key = 'audit_public_key'")
        .bind(attacker_key.verifier().to_string().into_bytes())
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let trusting = |more: &[&str]| {
        crate::support::custodia()
            .args(["audit", "verify", "--trust-database-key", "--data-dir"])
            .arg(copy.path())
            .args(more)
            .output()
            .unwrap()
    };
    // The checkpoint log beside it was signed by the real key: even the database's key fails it.
    assert!(!trusting(&[]).status.success());
    // Deleted, it is missed (the database holds checkpoints); told the server keeps none,
    // the database's own key is the attacker's: only a pinned key can tell.
    let log = copy.path().join("audit-checkpoints.log");
    let kept = std::fs::read(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    assert!(!trusting(&[]).status.success(), "the checkpoint log is missing");
    assert!(
        trusting(&["--no-checkpoint-log"]).status.success(),
        "the attacker's key signs the attacker's log"
    );
    std::fs::write(&log, kept).unwrap();
    let (ok, out) = verify_with(copy.path(), key, &[]);
    assert!(
        !ok && out.contains("audit_public_key row) is not the key given"),
        "swapped key: {out}"
    );
    let printed = refuses_to_start(copy.path(), &["--no-checkpoint-log"]);
    assert!(printed.contains("does not match the audit signing key"), "{printed}");

    // 4. The signing key row deleted: the server will not make a new key for an old log.
    let copy = copy_of(vault.path());
    sql(copy.path(), &["DELETE FROM meta WHERE key = 'audit_signing_key'"]).await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("audit signing key is missing"), "{printed}");
    // ... nor a new blind index key for old data (searches, tokens and audit lookups by
    // subject would find nothing, silently)
    let copy = copy_of(vault.path());
    sql(copy.path(), &["DELETE FROM meta WHERE key = 'index_key'"]).await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("blind index key is missing"), "{printed}");
    // ... nor a new access seal key (it would seal rows written by hand)
    let copy = copy_of(vault.path());
    sql(copy.path(), &["DELETE FROM meta WHERE key = 'access_seal_key'"]).await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("access seal key is missing"), "{printed}");

    // 5. An unsigned tail older than the bound fails verification (the server signs its last
    //    entries when it stops; a tail left unsigned means checkpoints were deleted).
    let copy = copy_of(vault.path());
    sql(
        copy.path(),
        &[
            DROP_CHECKPOINT_GUARDS,
            "DELETE FROM audit_checkpoints WHERE tree_size > (SELECT MIN(tree_size) FROM audit_checkpoints)",
        ],
    )
    .await;
    std::fs::remove_file(copy.path().join("audit-checkpoints.log")).unwrap();
    // (the checkpoint log's absence is a finding of its own, unless the server keeps none)
    let (ok, out) = verify_with(copy.path(), key, &["--max-unsigned-age", "1h"]);
    assert!(!ok && out.contains("audit-checkpoints.log is missing"), "{out}");
    let (ok, out) = verify_with(copy.path(), key, &["--max-unsigned-age", "1h", "--no-checkpoint-log"]);
    assert!(
        ok && out.contains("warning: no checkpoint from outside"),
        "a fresh unsigned tail within the bound: {out}"
    );
    let (ok, out) = verify_with(copy.path(), key, &["--max-unsigned-age", "0s", "--no-checkpoint-log"]);
    assert!(!ok && out.contains("no checkpoint covers it"), "{out}");
    // A tail rewritten with dates in the future (so that it would never age) fails too.
    let db = attacker(copy.path()).await;
    let (seq, entry): (i64, String) = sqlx::query_as("SELECT seq, entry FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_one(&db)
        .await
        .unwrap();
    let mut moved: Value = serde_json::from_str(&entry).unwrap();
    let at = moved["at"].as_i64().unwrap() + 86_400_000;
    moved["at"] = json!(at);
    let forged = serde_json::to_string(&moved).unwrap();
    sqlx::query("UPDATE audit_log SET entry = ?, leaf = ?, at = ? WHERE seq = ?")
        .bind(&forged)
        .bind(leaf(&forged))
        .bind(at)
        .bind(seq)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let (ok, out) = verify_with(copy.path(), key, &["--max-unsigned-age", "1h", "--no-checkpoint-log"]);
    assert!(!ok && out.contains("in the future"), "{out}");

    // The untouched directory still starts.
    let server = Server::try_start(vault.path(), None, &[]).unwrap();
    server.terminate();
}

/// A `custodia witness` process; killed on drop.
struct Witness {
    child: std::process::Child,
    url: String,
    key: String,
    _state: tempfile::TempDir,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn witness(log_key: &str) -> Witness {
    let state = tempfile::tempdir().unwrap();
    let mut child = crate::support::custodia()
        .args([
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "test-witness",
            "--log-key",
            log_key,
            "--state-dir",
        ])
        .arg(state.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut key, mut listening) = (String::new(), String::new());
    stdout.read_line(&mut key).unwrap();
    stdout.read_line(&mut listening).unwrap();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {}
    });
    Witness {
        child,
        url: listening.split_whitespace().last().unwrap().to_owned(),
        key: key.trim().strip_prefix("witness key: ").unwrap().to_owned(),
        _state: state,
    }
}

/// The newest line of a checkpoint log once it carries the witness's cosignature.
async fn cosigned_line(path: &Path) -> Value {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Some(line) = text.lines().rev().find(|l| l.contains("test-witness"))
        {
            return serde_json::from_str(line).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no cosigned checkpoint in {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_cosigns_a_growing_log_and_holds_the_line_against_a_rewrite() {
    let vault = Vault::init();
    let w = witness(&vault.audit_key);
    let args = ["--witness", w.url.as_str(), "--witness-key", w.key.as_str()];
    let server = Server::try_start(vault.path(), None, &args).unwrap();
    traffic(&server, &vault.token, 0, 4).await;
    let log = vault.path().join("audit-checkpoints.log");
    // (read once the server has stopped: its last checkpoint is the newest, the start's
    // covered the entry of the registry it serves alone)
    server.terminate();
    let line = cosigned_line(&log).await;
    assert!(line["note"].as_str().unwrap().contains("\n\u{2014} test-witness "));

    // The witness serves the newest cosigned checkpoint; it is what the vault checks at start.
    let mut http = crate::support::Client::connect(w.url.strip_prefix("http://").unwrap().parse().unwrap()).await;
    let (status, _) = http.text("POST", "/add-checkpoint", "not a request").await;
    assert_eq!(status, 400);

    // The insider rewrites an entry (leaf recomputed), deletes every checkpoint and the
    // checkpoint log (they have the whole data directory). The witness still knows.
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    let entry: String = sqlx::query_scalar("SELECT entry FROM audit_log WHERE decision = 'deny' LIMIT 1")
        .fetch_one(&db)
        .await
        .unwrap();
    let forged = entry.replace("\"deny\"", "\"allow\"");
    sqlx::query("UPDATE audit_log SET entry = ?, leaf = ?, decision = 'allow' WHERE entry = ?")
        .bind(&forged)
        .bind(leaf(&forged))
        .bind(&entry)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    sql(copy.path(), &[DROP_CHECKPOINT_GUARDS, "DELETE FROM audit_checkpoints"]).await;
    std::fs::remove_file(copy.path().join("audit-checkpoints.log")).unwrap();
    let printed = refuses_to_start(copy.path(), &args);
    assert!(
        printed.contains("the witness at") && printed.contains("does not match the entries"),
        "{printed}"
    );

    // Tail truncation is caught by the witness too.
    let copy = copy_of(vault.path());
    sql(
        copy.path(),
        &[
            DROP_CHECKPOINT_GUARDS,
            "DELETE FROM audit_log WHERE seq > 3",
            "DELETE FROM audit_checkpoints",
            "DELETE FROM audit_subject_index",
            "UPDATE audit_index_state SET upto = 0",
        ],
    )
    .await;
    std::fs::remove_file(copy.path().join("audit-checkpoints.log")).unwrap();
    let printed = refuses_to_start(copy.path(), &args);
    assert!(printed.contains("entries were deleted"), "{printed}");

    // A checkpoint the witness did not see extend its own is refused with 422; the log's
    // own, with the right proof, is cosigned (the untouched vault starts and goes on).
    let note = line["note"].as_str().unwrap();
    let body = note.split("\n\n").next().unwrap();
    let size: u64 = body.lines().nth(1).unwrap().parse().unwrap();
    let fake_root = B64.encode([9u8; 32]);
    let forged_cp = format!("custodia-audit\n{}\n{fake_root}\n", size + 1);
    // Signed by a stranger: 403 (not the log's key).
    let stranger = NoteSigner::from_seed("custodia-audit", ED25519_TYPE, &[5; 32]).unwrap();
    let request = format!(
        "old {size}\n{fake_root}\n\n{}",
        stranger.sign(&forged_cp).unwrap().to_text()
    );
    assert_eq!(http.text("POST", "/add-checkpoint", &request).await.0, 403);
    let (status, body) = http.text("POST", "/add-checkpoint", &format!("old 1\n\n{note}")).await;
    assert_eq!((status, body.trim()), (409, size.to_string().as_str()));
    let server = Server::try_start(vault.path(), None, &args).unwrap();
    traffic(&server, &vault.token, 4, 6).await;
    server.terminate();
    let (ok, out) = verify_with(
        vault.path(),
        &vault.audit_key,
        &["--trusted-checkpoint", log.to_str().unwrap()],
    );
    assert!(ok, "{out}");
}

/// Invalid access attempts are in the log: 401s by key id (aggregated, never the secret), and
/// audit queries with their filter, so "who looked up subject X" is answered by X's lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_and_audit_lookups_are_audited() {
    let vault = Vault::init();
    let server = vault.serve();
    let bad_secret = format!("cst_00000000000000aa_{}", "ab".repeat(32));
    for _ in 0..40 {
        assert_eq!(server.client(&bad_secret).await.get("/v1/principals").await.0, 401);
    }
    assert_eq!(server.client("not-a-key").await.get("/v1/principals").await.0, 401);
    assert_eq!(server.anonymous().await.get("/v1/principals").await.0, 401);
    let mut admin = server.client(&vault.token).await;
    let (status, _) = admin
        .get("/v1/audit/events?subject_id=cust_looked_up&action=record.read")
        .await;
    assert_eq!(status, 200);
    // Failed authentications are written per window and when the server stops.
    server.terminate();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (_, v) = admin.get("/v1/audit/events?action=auth.failed").await;
    let entries: Vec<&Value> = v["events"].as_array().unwrap().iter().map(|e| &e["entry"]).collect();
    // One entry per key id and window (a window may have closed between requests): the
    // counts add up to the attempts.
    let attempts = |id: &str| -> u64 {
        entries
            .iter()
            .filter(|e| e["detail"]["key_id"] == id)
            .inspect(|e| assert_eq!(e["decision"], "deny"))
            .map(|e| e["detail"]["count"].as_str().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(attempts("00000000000000aa"), 40, "{entries:#?}");
    assert!(
        entries
            .iter()
            .filter(|e| e["detail"]["key_id"] == "00000000000000aa")
            .count()
            <= 3
    );
    assert_eq!(attempts("malformed"), 1);
    assert_eq!(attempts("none"), 1);
    assert!(
        !v.to_string().contains(&"ab".repeat(32)),
        "the secret half of a key is never logged"
    );
    // The lookup of a subject is found by looking that subject up.
    let (_, v) = admin.get("/v1/audit/events?subject_id=cust_looked_up").await;
    let lookup = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["entry"])
        .find(|e| e["action"] == "audit.read")
        .unwrap_or_else(|| panic!("the audit lookup is not in the subject's trail: {v}"));
    assert_eq!(lookup["detail"]["action"], "record.read");
    assert!(
        !v.to_string().contains("cust_looked_up"),
        "subject ids never enter the log"
    );
}

/// Detokenizing tokens that open to nothing leaves a deny entry counting them (a probe), and
/// the tokens themselves are not logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_token_probes_are_audited() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let probes = ["tok_probe1probe1probe1", "tok_probe2probe2probe2", "4111111111111111"];
    let (status, v) = admin
        .post("/v1/tokens/detokenize", json!({"purpose": "payment", "tokens": probes}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["values"].as_array().unwrap().iter().all(|x| x["value"].is_null()));
    let (_, v) = admin
        .get("/v1/audit/events?action=token.detokenize&decision=deny")
        .await;
    let entries: Vec<&Value> = v["events"].as_array().unwrap().iter().map(|e| &e["entry"]).collect();
    let probe = entries
        .iter()
        .find(|e| e["reason"] == "unknown_token")
        .unwrap_or_else(|| panic!("no probe entry: {entries:#?}"));
    assert_eq!(probe["detail"]["count"], "3");
    for p in probes {
        assert!(!v.to_string().contains(p), "a probed token is in the log");
    }
}

/// Proofs are rate-limited per API key (each reads tiles and writes an audit entry): a rapid
/// run of them gets 429s in the JSON error shape, and another key is not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_proofs_are_rate_limited_per_key() {
    let vault = Vault::init();
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 2).await;
    let cp = checkpoint_of_at_least(&server, &vault.token, 6).await;
    let size = cp["tree_size"].as_i64().unwrap();
    let mut admin = server.client(&vault.token).await;
    let auditor_key = admin.principal("the-auditor", &["auditor"]).await;
    let mut statuses = Vec::new();
    for i in 0..300 {
        let (status, v) = admin
            .get(&format!(
                "/v1/audit/proof/inclusion?index={}&tree_size={size}",
                i % size
            ))
            .await;
        if status == 429 {
            assert_eq!(v["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert!(statuses[..50].iter().all(|s| *s == 200), "a burst is allowed");
    assert!(statuses.contains(&429), "300 proofs at once are not");
    let (status, _) = server
        .client(&auditor_key)
        .await
        .get(&format!("/v1/audit/proof/consistency?from=1&to={size}"))
        .await;
    assert_eq!(status, 200, "another key has its own allowance");
}

/// On PostgreSQL the owner (or a superuser) can lift the guards and TRUNCATE the log and its
/// checkpoints: the checkpoint log outside the database catches it, in `verify` and at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_on_postgres_is_caught_by_outside_checkpoints() {
    let Some(url) = crate::support::postgres_url() else {
        assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
        return;
    };
    let database = crate::support::fresh_postgres_database(&url);
    let vault = Vault::init_with(Some(database.clone()));
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 3).await;
    checkpoint_of_at_least(&server, &vault.token, 9).await;
    server.terminate();
    let log = vault.path().join("audit-checkpoints.log");
    let verify = |extra: &[&str]| {
        let mut args = vec!["--database-url", database.as_str()];
        args.extend_from_slice(extra);
        verify_with(vault.path(), &vault.audit_key, &args)
    };
    let (ok, out) = verify(&["--trusted-checkpoint", log.to_str().unwrap()]);
    assert!(ok, "{out}");

    let db = sqlx::PgPool::connect(&database).await.unwrap();
    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL",
        "ALTER TABLE audit_tiles DISABLE TRIGGER ALL",
        "TRUNCATE audit_log, audit_checkpoints, audit_tiles, audit_subject_index",
        "UPDATE audit_index_state SET upto = 0",
    ] {
        sqlx::query(sql)
            .execute(&db)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    db.close().await;
    let (ok, out) = verify(&["--trusted-checkpoint", log.to_str().unwrap()]);
    assert!(!ok && out.contains("entries were deleted"), "{out}");
    let printed = match Server::try_start(vault.path(), Some(&database), &[]) {
        Ok(_) => panic!("the server started on a truncated log"),
        Err(printed) => printed,
    };
    assert!(printed.contains("entries were deleted"), "{printed}");
}

/// A fork (two copies of one vault both appending) is caught by the witness: the copy whose
/// checkpoint the witness refuses stops answering (503), and a server does not start while
/// its witness cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_vault_stops_when_its_witness_refuses_it() {
    let vault = Vault::init();
    let mut w = witness(&vault.audit_key);
    let args = ["--witness", w.url.as_str(), "--witness-key", w.key.as_str()];
    let server = Server::try_start(vault.path(), None, &args).unwrap();
    traffic(&server, &vault.token, 0, 1).await;
    server.terminate();
    let fork = copy_of(vault.path());
    let (a, b) = (
        Server::try_start(vault.path(), None, &args).unwrap(),
        Server::try_start(fork.path(), None, &args).unwrap(),
    );
    traffic(&a, &vault.token, 1, 4).await;
    // The witness sees a's longer log first (a cosigned line of 12 entries or more), then b
    // appends a history of its own.
    let log = vault.path().join("audit-checkpoints.log");
    let mut witnessed = false;
    for _ in 0..100 {
        witnessed = std::fs::read_to_string(&log).unwrap_or_default().lines().any(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["tree_size"].as_i64().unwrap() >= 12 && v["note"].as_str().unwrap().contains("test-witness")
        });
        if witnessed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(witnessed, "a's log was never witnessed at 12 entries");
    let mut b_client = b.client(&vault.token).await;
    assert!(
        stops_answering(&mut b_client, "/v1/subjects/cust_fork/records/customers").await,
        "the forked copy went on after its witness refused it"
    );
    a.terminate();
    drop(b);
    // The witness away: a server configured with it does not start.
    let _ = w.child.kill();
    let _ = w.child.wait();
    let printed = refuses_to_start(vault.path(), &args);
    assert!(printed.contains("must be reachable"), "{printed}");
}

/// A copy of `dir` tampered with by `statements`: `verify` fails and the server refuses to
/// start, both saying `says`.
async fn caught_by_verify_and_at_start(dir: &Path, key: &str, statements: &[&str], says: &str) {
    let copy = copy_of(dir);
    sql(copy.path(), statements).await;
    let (ok, out) = verify_with(copy.path(), key, &[]);
    assert!(!ok && out.contains(says), "{statements:?}: {out}");
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains(says), "{statements:?}: {printed}");
}

/// Stored tiles are what proofs are read from: a tile edited or deleted (below stored ones),
/// and checkpoints deleted from the database while the checkpoint log beside it holds a later
/// one, are named by `verify` and stop the server's start (before, verify called a deleted
/// tile or deleted checkpoints intact, and the server refused the tile with an internal error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_or_deleted_tiles_and_deleted_checkpoints_are_named_by_verify_and_at_start() {
    let vault = Vault::init();
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 180).await;
    checkpoint_of_at_least(&server, &vault.token, 520).await;
    server.terminate();
    let (ok, out) = verify_with(vault.path(), &vault.audit_key, &[]);
    assert!(ok, "{out}");
    let (dir, key) = (vault.path(), vault.audit_key.as_str());
    caught_by_verify_and_at_start(
        dir,
        key,
        &[
            "DROP TRIGGER IF EXISTS audit_tiles_no_update",
            "UPDATE audit_tiles SET hashes = zeroblob(32) || substr(hashes, 33) WHERE level = 0 AND idx = 0",
        ],
        "audit tile at level 0, index 0 does not match",
    )
    .await;
    caught_by_verify_and_at_start(
        dir,
        key,
        &[
            "DROP TRIGGER IF EXISTS audit_tiles_no_delete",
            "DELETE FROM audit_tiles WHERE level = 0 AND idx = 0",
        ],
        "tile at level 0, index 0 is missing",
    )
    .await;
    for deleted in [
        "DELETE FROM audit_checkpoints WHERE tree_size = (SELECT MAX(tree_size) FROM audit_checkpoints)",
        "DELETE FROM audit_checkpoints",
    ] {
        caught_by_verify_and_at_start(
            dir,
            key,
            &[DROP_CHECKPOINT_GUARDS, deleted],
            "checkpoints were deleted from the database",
        )
        .await;
    }

    // The checkpoint log deleted (with the checkpoints after the first, to rewrite what they
    // covered): the server does not begin a new log over a database that has checkpoints.
    let copy = copy_of(vault.path());
    sql(
        copy.path(),
        &[
            DROP_CHECKPOINT_GUARDS,
            "DELETE FROM audit_checkpoints WHERE tree_size > (SELECT MIN(tree_size) FROM audit_checkpoints)",
        ],
    )
    .await;
    std::fs::remove_file(copy.path().join("audit-checkpoints.log")).unwrap();
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(
        printed.contains("audit-checkpoints.log is missing, but the database holds checkpoints"),
        "{printed}"
    );
    // and `audit verify` finds it as the server does (it passed with a warning; review), a
    // directory in its place and an emptied one too (exit 1: a finding, not "cannot run")
    let (ok, out) = verify_with(copy.path(), key, &[]);
    assert!(
        !ok && out.contains("audit-checkpoints.log is missing, but the database holds checkpoints"),
        "{out}"
    );
    let log = copy.path().join("audit-checkpoints.log");
    std::fs::create_dir(&log).unwrap();
    let (ok, out) = verify_with(copy.path(), key, &[]);
    assert!(!ok && out.contains("is not a file"), "{out}");
    std::fs::remove_dir(&log).unwrap();
    std::fs::write(&log, b"").unwrap();
    let out = crate::support::custodia()
        .args(["audit", "verify", "--public-key", key, "--data-dir"])
        .arg(copy.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && said.contains("holds no checkpoint"),
        "{said}"
    );
    std::fs::remove_file(&log).unwrap();
    // Emptied rather than deleted, it proves as little (the server started on it before).
    std::fs::write(copy.path().join("audit-checkpoints.log"), b"").unwrap();
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(
        printed.contains("audit-checkpoints.log is empty, but the database holds checkpoints"),
        "{printed}"
    );
    std::fs::remove_file(copy.path().join("audit-checkpoints.log")).unwrap();
    // An operator who moved it aside on purpose says so once, and the server goes on.
    let server = Server::try_start(copy.path(), None, &["--new-checkpoint-log"]).unwrap();
    server.terminate();
    assert!(copy.path().join("audit-checkpoints.log").is_file(), "a new log begun");
    Server::try_start(copy.path(), None, &[]).unwrap().terminate();
    // and the log says so, with what the database's checkpoints reached
    let db = attacker(copy.path()).await;
    let begun: Vec<(String,)> =
        sqlx::query_as("SELECT entry FROM audit_log WHERE action = 'audit.checkpoint_log_begun'")
            .fetch_all(&db)
            .await
            .unwrap();
    db.close().await;
    assert_eq!(begun.len(), 1, "{begun:?}");
    assert!(begun[0].0.contains("database_checkpoints_up_to"), "{begun:?}");
}

/// Checkpoints deleted from the database while the server runs: before its next checkpoint the
/// server sees its own last one gone and stops answering (fail closed), instead of signing on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_stops_when_its_checkpoints_vanish() {
    let vault = Vault::init();
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 2).await;
    checkpoint_of_at_least(&server, &vault.token, 6).await;
    sql(vault.path(), &[DROP_CHECKPOINT_GUARDS, "DELETE FROM audit_checkpoints"]).await;
    let mut admin = server.client(&vault.token).await;
    assert!(
        stops_answering(&mut admin, "/v1/subjects/cust_after/records/customers").await,
        "the server went on signing a log whose checkpoints were deleted"
    );
}

/// Inserts `entry` into the log of the vault in `dir` as an insider with the database alone
/// would: the leaf hash and indexed columns computed as the vault computes them.
async fn insert_entry(dir: &Path, (at, entry): (i64, String)) {
    let db = attacker(dir).await;
    sqlx::query(
        "INSERT INTO audit_log (at, entry, leaf, principal, action, decision, purpose, subject) \
         VALUES (?, ?, ?, 'prn_ana', 'record.list', 'allow', 'payment', NULL)",
    )
    .bind(at)
    .bind(&entry)
    .bind(leaf(&entry))
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
}

fn chrono_now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// An entry framing an operator, as an insider writes it: untagged, or with a tag of the
/// right shape made without the vault's key.
fn forged_entry(tag: Option<&str>) -> (i64, String) {
    let at = chrono_now_ms();
    let body = format!(
        "{{\"v\":1,\"at\":{at},\"principal\":\"prn_ana\",\"action\":\"record.list\",\"decision\":\"allow\",\"reason\":null,\"purpose\":\"payment\",\"collection\":\"customers\",\"subject\":null,\"fields\":[\"card_number\"]"
    );
    match tag {
        Some(tag) => (at, format!("{body},\"tag\":\"{tag}\"}}")),
        None => (at, format!("{body}}}")),
    }
}

/// Review of issue 10 (2026-12-06): a row inserted into `audit_log` by someone with the
/// database alone (an INSERT, which the service may run, so no trigger stops it), its leaf
/// hash recomputed, was signed by the server's next checkpoint: an operator framed, a blast
/// radius padded. The vault tags every entry it writes with a key the database does not
/// hold: a row without its tag, or with a tag it did not make, stops the running server
/// before any checkpoint covers it, keeps a server from starting, and `audit verify` (no
/// root key) names an untagged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_inserted_without_the_vaults_keys_are_never_signed() {
    let vault = Vault::init();
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 2).await;
    let before = checkpoint_of_at_least(&server, &vault.token, 6).await;
    let signed = before["tree_size"].as_i64().unwrap();
    let mut admin = server.client(&vault.token).await;
    let (_, page) = admin.get("/v1/audit/events?limit=1").await;
    let text = page["events"][0]["canonical"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains(",\"tag\":\""), "the vault tags what it writes: {page}");

    // At start: a copy with each kind of forged row in its tail.
    for tag in [None, Some("0".repeat(64))] {
        let copy = copy_of(vault.path());
        insert_entry(copy.path(), forged_entry(tag.as_deref())).await;
        let printed = refuses_to_start(copy.path(), &[]);
        assert!(
            printed.contains("was not written by this vault") || printed.contains("carries no tag"),
            "{printed}"
        );
        if tag.is_none() {
            let (ok, out) = verify_with(copy.path(), &vault.audit_key, &[]);
            assert!(!ok && out.contains("carries no tag"), "{out}");
        }
    }

    // Before the vault's first entry (a fresh vault; or one a version before tags stopped,
    // having signed what it wrote): a row no checkpoint covers and no tag vouches for.
    let fresh = Vault::init();
    insert_entry(fresh.path(), forged_entry(None)).await;
    let printed = refuses_to_start(fresh.path(), &[]);
    assert!(printed.contains("carries no tag"), "{printed}");

    // While the server runs: it stops before signing the row.
    insert_entry(vault.path(), forged_entry(None)).await;
    assert!(
        stops_answering(&mut admin, "/v1/subjects/cust_after/records/customers").await,
        "the server went on with a row it did not write in its log"
    );
    server.terminate();
    let (newest, forged_at) = newest_checkpoint_and(
        vault.path(),
        "SELECT COUNT(*) FROM audit_log WHERE seq <= (SELECT seq FROM audit_log WHERE principal = 'prn_ana')",
    )
    .await;
    assert!(
        newest >= signed && newest < forged_at,
        "no checkpoint covers the forged row: {newest} {forged_at}"
    );
}

/// The newest checkpoint's size, and the count `query` gives (the position of a forged row).
async fn newest_checkpoint_and(dir: &Path, query: &str) -> (i64, i64) {
    let db = attacker(dir).await;
    let newest: i64 = sqlx::query_scalar("SELECT MAX(tree_size) FROM audit_checkpoints")
        .fetch_one(&db)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_one(&db)
        .await
        .unwrap();
    db.close().await;
    (newest, count)
}

/// Copies the entry `seq` (0: the last) of the log to its end, text, leaf hash, columns and
/// all, as an insider with the database alone can; `with_link`: its link too.
async fn replay_entry(dir: &Path, seq: i64, with_link: bool) {
    let db = attacker(dir).await;
    let link = if with_link { "link" } else { "NULL" };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_log (at, entry, leaf, principal, action, decision, purpose, subject, link) \
         SELECT at, entry, leaf, principal, action, decision, purpose, subject, {link} FROM audit_log \
         WHERE seq = CASE WHEN ? = 0 THEN (SELECT MAX(seq) FROM audit_log) ELSE ? END"
    )))
    .bind(seq)
    .bind(seq)
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
}

/// Review of issue 10 (2026-12-06): an entry the vault wrote, copied again to the log's end
/// (its tag is good: the vault made it), was signed: the same read or break-glass counted
/// twice. The store links each entry to the one before it as it appends it, with a key the
/// database does not hold: a copy's link was made after another entry, so it stops the
/// running server before any checkpoint covers it and keeps a server from starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_an_entry_the_vault_wrote_is_never_signed() {
    let vault = Vault::init();
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 2).await;
    let signed = checkpoint_of_at_least(&server, &vault.token, 6).await["tree_size"]
        .as_i64()
        .unwrap();
    let mut admin = server.client(&vault.token).await;

    // At start: the last entry or an earlier one copied, with its link or without one.
    for (seq, with_link, says) in [
        (0, true, "is not where this vault appended it"),
        (2, true, "is not where this vault appended it"),
        (0, false, "carries no link"),
    ] {
        let copy = copy_of(vault.path());
        replay_entry(copy.path(), seq, with_link).await;
        let printed = refuses_to_start(copy.path(), &[]);
        assert!(
            printed.contains(says),
            "entry {seq} copied (link: {with_link}): {printed}"
        );
    }
    // (second review) The last entry copied with its link, and the link of the original, a
    // column outside what checkpoints sign, rewritten to the link before it: the copy then
    // follows it. Every entry's link is checked at start, checkpointed or not.
    let copy = copy_of(vault.path());
    replay_entry(copy.path(), 0, true).await;
    sql(
        copy.path(),
        &[
            "UPDATE audit_log SET link = (SELECT link FROM audit_log ORDER BY seq DESC LIMIT 1 OFFSET 2) \
             WHERE seq = (SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1 OFFSET 1)",
        ],
    )
    .await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("a link was rewritten"), "{printed}");

    // While the server runs: it stops before signing the copy.
    replay_entry(vault.path(), 0, true).await;
    assert!(
        stops_answering(&mut admin, "/v1/subjects/cust_after/records/customers").await,
        "the server went on with a copied entry in its log"
    );
    server.terminate();
    let (newest, entries) = newest_checkpoint_and(vault.path(), "SELECT COUNT(*) FROM audit_log").await;
    assert!(
        newest >= signed && newest < entries,
        "no checkpoint covers the copy: {newest} of {entries}"
    );
}

/// The newest entry deleted from a running server's database (a read it has answered, before
/// a checkpoint covered it, or after), the sequence set back so that the next entry takes
/// its number: the server's next append finds the log's tail is not the entry it appended
/// last, and it answers nothing more. Before, the next entry took the deleted one's place
/// and every check passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_entry_deleted_under_a_running_server_stops_it() {
    let vault = Vault::init();
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 2).await;
    checkpoint_of_at_least(&server, &vault.token, 6).await;
    let mut admin = server.client(&vault.token).await;
    let read = "/v1/subjects/cust_0/records/customers?purpose=order_fulfillment";
    let (status, v) = admin.get(read).await;
    assert_eq!(status, 200, "{v}");
    sql(
        vault.path(),
        &[
            "DROP TRIGGER IF EXISTS audit_log_no_delete",
            "DELETE FROM audit_subject_index WHERE seq = (SELECT MAX(seq) FROM audit_log)",
            "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
            "UPDATE sqlite_sequence SET seq = seq - 1 WHERE name = 'audit_log'",
        ],
    )
    .await;
    let (status, v) = admin.raw_unchecked("GET", read, None).await;
    assert!(
        matches!(status, 500 | 503) && !v.to_string().contains("N0"),
        "a read was answered over a log missing an entry: {status} {v}"
    );
    assert!(stops_answering(&mut admin, "/v1/subjects/cust_9/records/customers").await);
}

/// Each of `keys` is refused as no key at all.
async fn refused(server: &Server, keys: &[&str]) {
    for key in keys {
        let (status, v) = server
            .client(key)
            .await
            .raw_unchecked("GET", "/v1/principals", None)
            .await;
        assert_eq!(status, 401, "{v}");
    }
}

/// Whoever can write the database but holds no root key writes a principal into it (roles
/// `admin`, the hash of a key they chose), or gives an existing principal another role: the
/// running server refuses those keys (the rows do not carry the vault's seal), and a
/// restarted one too. Before, the made-up key read cards in clear at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_written_into_the_database_by_hand_is_refused() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let desk = admin.principal("desk", &["support_agent"]).await;
    let secret = "ab".repeat(32);
    let hash = hex::encode(custodia_crypto::sha256(secret.as_bytes()));
    sql(
        vault.path(),
        &[
            &format!(
                "INSERT INTO principals (principal_id, name, roles, key_id, key_hash, created_at) \
                 VALUES ('prn_aaaaaaaaaaaaaaaaaaaaaaaa', 'evil', 'admin', 'aaaaaaaaaaaaaaaa', X'{hash}', 1)"
            ),
            "UPDATE principals SET roles = 'admin' WHERE name = 'desk'",
        ],
    )
    .await;
    let forged = format!("cst_aaaaaaaaaaaaaaaa_{secret}");
    refused(&server, &[&forged, &desk]).await;
    // the list says which rows the vault did not write
    let (_, list) = admin.get("/v1/principals").await;
    let mut altered: Vec<&str> = list["principals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["altered"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    altered.sort_unstable();
    assert_eq!(altered, ["desk", "evil"], "{list}");
    // an administrator cannot seal it by rotating its key either
    let (status, v) = admin
        .raw_unchecked(
            "POST",
            "/v1/principals/prn_aaaaaaaaaaaaaaaaaaaaaaaa/rotate",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("principal_altered")),
        "{v}"
    );
    server.terminate();
    // the upgrade's sealing asked for again by hand seals nothing, and a sealed row changed
    // by hand stops the start, named
    sql(
        vault.path(),
        &["UPDATE meta SET value = X'01' WHERE key = 'access_seals_pending'"],
    )
    .await;
    let printed = refuses_to_start(vault.path(), &[]);
    let desk_id = crate::tamper::scalar(vault.path(), "SELECT principal_id FROM principals WHERE name = 'desk'").await;
    assert!(
        printed.contains("not as the vault sealed them") && printed.contains(&format!("principal {desk_id}")),
        "{printed}"
    );
    // put back as the vault left it, the server starts; the row inserted without a seal is
    // no part of what it counts, and is still refused
    sql(
        vault.path(),
        &["UPDATE principals SET roles = 'support_agent' WHERE name = 'desk'"],
    )
    .await;
    let server = vault.serve();
    refused(&server, &[&forged]).await;
    // the vault's own principals still work after the restart
    let (status, v) = server.client(&vault.token).await.get("/v1/principals").await;
    assert_eq!(status, 200, "{v}");
}

/// Consent is read from the subject ledger on every read: an entry written into the database
/// by hand would give it. A withdrawal turned into a grant, or into a copy of the grant with
/// its seal, or moved to another subject: the subject's reads answer 409 `ledger_altered`,
/// other subjects' are untouched. An entry inserted or deleted (a forged consent, a withdrawal
/// removed, a whole subject's ledger with its head): the server does not start. Nor will it
/// seal the ledger anew once its mark is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_written_into_the_ledger_by_hand_is_refused() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let marketing_key = admin.principal("newsletter", &["marketing_service"]).await;
    let consent_key = admin.principal("preference-centre", &["consent_service"]).await;
    let mut prefs = server.client(&consent_key).await;
    let consent = |granted: bool| json!({"purpose": "marketing_email", "granted": granted, "notice_version": "v1", "method": "web_form"});
    // each grants, has its email written under marketing, then withdraws (but `cust_fine`)
    for subject in ["cust_flipped", "cust_copied", "cust_moved", "cust_fine"] {
        let (status, v) = prefs
            .post(&format!("/v1/subjects/{subject}/consents"), consent(true))
            .await;
        assert_eq!(status, 201, "{v}");
        let (status, v) = admin
            .post(
                &format!("/v1/subjects/{subject}/records/customers"),
                json!({"purpose": "marketing_email", "fields": {"email": "kim@example.com"}}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        if subject != "cust_fine" {
            let (status, v) = prefs
                .post(&format!("/v1/subjects/{subject}/consents"), consent(false))
                .await;
            assert_eq!(status, 201, "{v}");
        }
    }
    server.terminate();
    let seq_of = |subject: &str, nth: usize| {
        format!("(SELECT seq FROM subject_ledger WHERE subject_id = '{subject}' ORDER BY seq LIMIT 1 OFFSET {nth})")
    };
    const UNGUARDED: [&str; 4] = [
        "DROP TRIGGER IF EXISTS subject_ledger_no_update",
        "DROP TRIGGER IF EXISTS subject_ledger_no_delete",
        "DROP TRIGGER IF EXISTS subject_ledger_seals_no_update",
        "DROP TRIGGER IF EXISTS subject_ledger_seals_no_delete",
    ];
    // Each an entry changed in place: served, the subject refused.
    let changed = crate::audit::copy_of(vault.path());
    let (grant, withdrawal) = (seq_of("cust_copied", 0), seq_of("cust_copied", 1));
    let statements: Vec<String> = UNGUARDED
        .iter()
        .map(|s| (*s).to_owned())
        .chain([
            // (a blob where the vault writes an integer: read as an alteration, not a failure)
            format!(
                "UPDATE subject_ledger SET value = x'01' WHERE seq = {}",
                seq_of("cust_flipped", 1)
            ),
            // the withdrawal made a copy of the grant, its seal with it
            format!(
                "UPDATE subject_ledger SET value = 1, at = (SELECT at FROM subject_ledger WHERE seq = {grant}) \
                 WHERE seq = {withdrawal}"
            ),
            format!(
                "UPDATE subject_ledger_seals SET seal = (SELECT seal FROM subject_ledger_seals WHERE seq = {grant}) \
                 WHERE seq = {withdrawal}"
            ),
            format!(
                "UPDATE subject_ledger SET subject_id = 'cust_other' WHERE seq = {}",
                seq_of("cust_moved", 1)
            ),
            format!(
                "UPDATE subject_ledger SET at = 'abc' WHERE seq = {}",
                seq_of("cust_moved", 0)
            ),
        ])
        .collect();
    sql(
        changed.path(),
        &statements.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let server = Server::start(changed.path(), None);
    let mut marketing = server.client(&marketing_key).await;
    let mut prefs = server.client(&consent_key).await;
    let read = |subject: &str| format!("/v1/subjects/{subject}/records/customers?purpose=marketing_email&fields=email");
    for subject in ["cust_flipped", "cust_copied", "cust_moved"] {
        let (status, v) = marketing.get(&read(subject)).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("ledger_altered")),
            "{subject}: {v}"
        );
        assert!(!v.to_string().contains("kim@example.com"), "{v}");
        // (how it was altered is for the operator's log, not for the caller)
        assert!(
            !v.to_string().contains("counted") && !v.to_string().contains("sealed"),
            "{v}"
        );
    }
    let (status, v) = marketing.get(&read("cust_fine")).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.to_string().contains("kim@example.com"), "{v}");
    // a search finds the others' matches, and tells nothing of the altered subjects'
    let (status, v) = marketing
        .post(
            "/v1/search",
            json!({"collection": "customers", "purpose": "marketing_email", "field": "email", "value": "kim@example.com"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["matches"].as_array().map(Vec::len), Some(1), "{v}");
    // a consent recorded over it does not seal it either
    let (status, v) = prefs.post("/v1/subjects/cust_flipped/consents", consent(true)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("ledger_altered")),
        "{v}"
    );
    drop(server);
    // Each an entry inserted or deleted: the whole ledger's tally tells at the start.
    // (the refusal names the entries, or the subject by its newest entry's number)
    let whole = "DELETE FROM subject_ledger_heads WHERE subject_id = 'cust_fine'";
    for (tampering, names) in [
        (
            vec!["INSERT INTO subject_ledger (subject_id, kind, purpose, value, notice_version, method, principal_id, at) \
                  VALUES ('cust_new', 'consent', 'marketing_email', 1, 'v1', 'web_form', 'prn_x', 1)"
                .to_owned()],
            "is not one the vault sealed",
        ),
        (
            vec![format!("DELETE FROM subject_ledger WHERE seq = {}", seq_of("cust_flipped", 1))],
            "holds 1 of the 2 entries counted",
        ),
        // a whole subject's ledger, head and all (its objections would go with it) ...
        (
            vec!["DELETE FROM subject_ledger WHERE subject_id = 'cust_fine'".to_owned(), whole.to_owned()],
            "heads are not those it sealed",
        ),
        // ... or moved to a subject that never was, head and all
        (
            vec![
                "UPDATE subject_ledger SET subject_id = 'cust_junk' WHERE subject_id = 'cust_fine'".to_owned(),
                "UPDATE subject_ledger_heads SET subject_id = 'cust_junk' WHERE subject_id = 'cust_fine'".to_owned(),
            ],
            "the head of the subject whose newest entry was",
        ),
        // a head of a type the vault never writes
        (
            vec!["UPDATE subject_ledger_heads SET seal = 5 WHERE subject_id = 'cust_fine'".to_owned()],
            "heads are not those it sealed",
        ),
    ] {
        let copy = crate::audit::copy_of(vault.path());
        let mut statements = UNGUARDED.to_vec();
        statements.extend(tampering.iter().map(String::as_str));
        sql(copy.path(), &statements).await;
        let printed = refuses_to_start(copy.path(), &[]);
        assert!(
            printed.contains("deleted, added or moved by hand") && printed.contains(names),
            "{tampering:?}: {printed}"
        );
    }
    // The mark that the ledger was sealed deleted, to have it sealed anew as at an upgrade:
    // refused while any seal is there ...
    let copy = crate::audit::copy_of(vault.path());
    sql(copy.path(), &["DELETE FROM meta WHERE key = 'ledger_sealed'"]).await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("refusing to seal the ledger anew"), "{printed}");
    // ... and with every seal, head and tally deleted too (a database from before seals, to
    // look at): only the operator's word seals it (`--seal-ledger`, after an upgrade)
    sql(
        copy.path(),
        &[
            "DROP TRIGGER IF EXISTS subject_ledger_seals_no_delete",
            "DELETE FROM subject_ledger_seals",
            "DELETE FROM subject_ledger_heads",
            "DELETE FROM meta WHERE key = 'ledger_tally'",
        ],
    )
    .await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("start once with `serve --seal-ledger`"), "{printed}");
}

/// A withdrawal replaced at its own number by an entry the vault seals itself: the entry
/// deleted, the subject's head put back as an earlier copy had it, the sequence set back, a
/// harmless entry for the subject asked of the server (which takes that number and seals the
/// head anew), the tally put back. Each head chains its entries' seals: the new head is not
/// the one the tally folded, and the start is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_replaced_at_its_number_by_a_sealed_entry_is_caught() {
    let vault = Vault::init();
    let consent = |granted: bool| json!({"purpose": "marketing_email", "granted": granted, "notice_version": "v1", "method": "web_form"});
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let consent_key = admin.principal("preference-centre", &["consent_service"]).await;
    let mut prefs = server.client(&consent_key).await;
    assert_eq!(prefs.post("/v1/subjects/cust_w/consents", consent(true)).await.0, 201);
    server.terminate();
    // the earlier copy the attacker keeps (a backup, the WAL)
    let earlier = crate::audit::copy_of(vault.path());
    let server = vault.serve();
    let mut prefs = server.client(&consent_key).await;
    assert_eq!(prefs.post("/v1/subjects/cust_w/consents", consent(false)).await.0, 201);
    // the attacker works on the running server's database
    let read = |dir: &Path, query: &'static str| {
        let path = dir.join("custodia.db");
        async move {
            let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            let row: (i64, i64, Vec<u8>, Vec<u8>, i64, Vec<u8>) = sqlx::query_as(query).fetch_one(&db).await.unwrap();
            db.close().await;
            row
        }
    };
    let query = "SELECT h.entries, h.last_seq, h.chain, h.seal, (SELECT MAX(seq) FROM subject_ledger), \
                 (SELECT value FROM meta WHERE key = 'ledger_tally') FROM subject_ledger_heads h \
                 WHERE h.subject_id = 'cust_w'";
    let (entries, last_seq, chain, seal, _, _) = read(earlier.path(), query).await;
    let (_, _, _, _, withdrawal, tally) = read(vault.path(), query).await;
    sql(
        vault.path(),
        &[
            "DROP TRIGGER IF EXISTS subject_ledger_no_delete",
            "DROP TRIGGER IF EXISTS subject_ledger_seals_no_delete",
            &format!("DELETE FROM subject_ledger_seals WHERE seq = {withdrawal}"),
            &format!("DELETE FROM subject_ledger WHERE seq = {withdrawal}"),
            &format!(
                "UPDATE subject_ledger_heads SET entries = {entries}, last_seq = {last_seq}, chain = X'{}', seal = X'{}' \
                 WHERE subject_id = 'cust_w'",
                hex::encode(&chain),
                hex::encode(&seal)
            ),
            &format!(
                "UPDATE sqlite_sequence SET seq = {} WHERE name = 'subject_ledger'",
                withdrawal - 1
            ),
        ],
    )
    .await;
    // the server takes the number again, for an entry it seals: a grant
    let (status, v) = prefs.post("/v1/subjects/cust_w/consents", consent(true)).await;
    assert_eq!((status, v["seq"].as_i64()), (201, Some(withdrawal)), "{v}");
    server.terminate();
    sql(
        vault.path(),
        &[&format!(
            "UPDATE meta SET value = X'{}' WHERE key = 'ledger_tally'",
            hex::encode(&tally)
        )],
    )
    .await;
    let printed = refuses_to_start(vault.path(), &[]);
    assert!(printed.contains("heads are not those it sealed"), "{printed}");
}

/// One value of the attacker's database (`query` names one column of one row).
async fn scalar(dir: &Path, query: &str) -> String {
    let db = attacker(dir).await;
    let v: String = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_one(&db)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    db.close().await;
    v
}

/// Whoever can write the database kept the row of a key from before its revocation, with the
/// seal the vault gave it then, and puts it back (the revocation undone): the row's own seal
/// holds, and the key worked again. The rows that grant access are tallied: the start is
/// refused. The tally deleted is refused too; deleted with the upgrade's mark set again (to
/// have the rows as they are tallied anew), the start tallies them and the audit log says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_put_back_from_an_earlier_copy_is_caught() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let desk = admin.principal("desk", &["support_agent"]).await;
    let kept = scalar(vault.path(), "SELECT hex(seal) FROM principals WHERE name = 'desk'").await;
    let id = scalar(vault.path(), "SELECT principal_id FROM principals WHERE name = 'desk'").await;
    let (status, v) = admin
        .raw_unchecked("DELETE", &format!("/v1/principals/{id}"), None)
        .await;
    assert!(status < 300, "{status} {v}");
    refused(&server, &[&desk]).await;
    let revoked = scalar(vault.path(), "SELECT hex(seal) FROM principals WHERE name = 'desk'").await;
    server.terminate();
    let put_back = format!("UPDATE principals SET revoked_at = NULL, seal = X'{kept}' WHERE name = 'desk'");
    // ... and another row's seal made up so that the seals XOR as before: a row's seal is
    // checked whatever the tally says (and the tally folds MACs of seals, not the seals)
    let admin_seal = scalar(vault.path(), "SELECT hex(seal) FROM principals WHERE name <> 'desk'").await;
    let balanced: String = [&admin_seal, &kept, &revoked]
        .map(|h| hex::decode(h).unwrap())
        .into_iter()
        .reduce(|a, b| a.iter().zip(&b).map(|(x, y)| x ^ y).collect())
        .map(hex::encode)
        .unwrap();
    let copy = crate::audit::copy_of(vault.path());
    sql(
        copy.path(),
        &[
            &put_back,
            &format!("UPDATE principals SET seal = X'{balanced}' WHERE name <> 'desk'"),
        ],
    )
    .await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(
        printed.contains("not as the vault sealed them") && printed.contains("principal prn_"),
        "{printed}"
    );
    let copy = crate::audit::copy_of(vault.path());
    sql(copy.path(), &[&put_back]).await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(
        printed.contains("the rows that grant access were altered")
            && printed.contains("sealed rows are not those the vault counted"),
        "{printed}"
    );
    // the tally deleted: refused, not made anew
    let copy = crate::audit::copy_of(vault.path());
    sql(copy.path(), &[&put_back, "DELETE FROM meta WHERE key = 'access_tally'"]).await;
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(printed.contains("access_tally) is missing"), "{printed}");
    // ... and with the upgrade's mark set again: tallied anew, in the audit log for good. Not
    // at a start refused for another reason (here the checkpoint log taken away), whose
    // unsigned entry could be deleted after it: only once the log was found whole
    sql(
        copy.path(),
        &["UPDATE meta SET value = X'01' WHERE key = 'access_tally_pending'"],
    )
    .await;
    let log = copy.path().join("audit-checkpoints.log");
    let aside = copy.path().join("aside.log");
    std::fs::rename(&log, &aside).unwrap();
    refuses_to_start(copy.path(), &[]);
    let made = "SELECT CAST(COUNT(*) AS TEXT) FROM meta WHERE key = 'access_tally'";
    assert_eq!(scalar(copy.path(), made).await, "0");
    std::fs::rename(&aside, &log).unwrap();
    // the mark alone is not enough: it is in the database, where whoever deleted the tally
    // set it; only the operator's word takes the rows as they are
    let printed = refuses_to_start(copy.path(), &[]);
    assert!(
        printed.contains("start once with `custodia serve --seal-access`"),
        "{printed}"
    );
    assert_eq!(scalar(copy.path(), made).await, "0");
    let tallied = "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE entry LIKE '%\"action\":\"access.tally\"%'";
    let before: i64 = scalar(copy.path(), tallied).await.parse().unwrap();
    let server = Server::try_start(copy.path(), None, &["--seal-access"]).unwrap();
    let after: i64 = scalar(copy.path(), tallied).await.parse().unwrap();
    assert_eq!(after, before + 1);
    server.terminate();
    // the vault's own changes since never set it off: a restart of the real directory starts
    let server = vault.serve();
    let (status, v) = server.client(&vault.token).await.get("/v1/principals").await;
    assert_eq!(status, 200, "{v}");
}

/// What a role may read, which courses an operator needs and where alerts go are in the
/// registry file, which whoever writes the data directory can edit between two starts: each
/// start records the registry it serves in the audit log, with the sections changed since the
/// previous start (review: a role widened and the training gate dropped by hand left no trace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_start_records_its_registry_and_what_changed_in_it() {
    let vault = Vault::init();
    let loaded = |log: &Value| -> Vec<Value> {
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entry"].clone())
            .filter(|e| e["action"] == "registry.loaded")
            .collect()
    };
    let server = vault.serve();
    server.terminate();
    // the same file again, with a comment added: no section changed
    let path = vault.path().join("registry.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("# reviewed\n{text}")).unwrap();
    let server = vault.serve();
    server.terminate();
    let widened = text.replace(
        "purposes = [\"customer_support\"]\ncapabilities = [\"use_scanner\"]",
        "purposes = [\"customer_support\", \"payment\"]\ncapabilities = [\"use_scanner\", \"read_audit\"]",
    );
    assert_ne!(widened, text, "the example's support role is as this test expects");
    let cut = widened.find("[training.").unwrap();
    std::fs::write(&path, &widened[..cut]).unwrap();
    let server = vault.serve();
    let (s, log) = server
        .client(&vault.token)
        .await
        .get("/v1/audit/events?action=registry.loaded")
        .await;
    assert_eq!(s, 200, "{log}");
    // (a start whose registry is as recorded, a comment added, records nothing)
    let entries = loaded(&log);
    assert_eq!(entries.len(), 2, "{log}");
    let changed: Vec<&str> = entries
        .iter()
        .map(|e| e["detail"]["changed"].as_str().unwrap())
        .collect();
    assert_eq!(changed[0], "(first recorded start)");
    let third: Vec<&str> = changed[1].split(',').collect();
    assert!(third.contains(&"roles.support_agent"), "{third:?}");
    assert!(third.iter().any(|s| s.starts_with("training.")), "{third:?}");
    assert!(
        third
            .iter()
            .all(|s| *s == "roles.support_agent" || s.starts_with("training.")),
        "{third:?}"
    );
    assert_ne!(entries[0]["detail"]["digest"], entries[1]["detail"]["digest"]);
    assert_eq!(entries[1]["principal"], "custodia:start");
    server.terminate();
    // What a role may read is in the data directory's policy files too: one added is a
    // section changed (review: a permit for the weakest role went unrecorded)
    let policies = vault.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("cards.cedar"),
        "forbid(principal, action == Action::\"read_plain\", resource) when { resource.field_type == \"card_number\" };\n",
    )
    .unwrap();
    let server = vault.serve();
    let (_, log) = server
        .client(&vault.token)
        .await
        .get("/v1/audit/events?action=registry.loaded")
        .await;
    let entries = loaded(&log);
    assert_eq!(entries.len(), 3, "{log}");
    assert_eq!(entries[2]["detail"]["changed"], "policies/cards.cedar", "{log}");
    server.terminate();
}

/// The whole log deleted with its checkpoints, tiles and checkpoint log reads as a vault never
/// used, but records and consents are written with their entries: `verify` and the start
/// refuse it (it started as a "first recorded start", and verify called it intact; review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_deleted_whole_beside_its_records_is_caught() {
    let vault = Vault::init();
    let server = vault.serve();
    traffic(&server, &vault.token, 0, 2).await;
    server.terminate();
    let copy = copy_of(vault.path());
    sql(
        copy.path(),
        &[
            DROP_CHECKPOINT_GUARDS,
            "DROP TRIGGER IF EXISTS audit_log_no_delete",
            "DROP TRIGGER IF EXISTS audit_tiles_no_delete",
            "DELETE FROM audit_log",
            "DELETE FROM audit_checkpoints",
            "DELETE FROM audit_tiles",
            "DELETE FROM audit_subject_index",
            "UPDATE audit_index_state SET upto = 0",
            "DELETE FROM sqlite_sequence WHERE name = 'audit_log'",
        ],
    )
    .await;
    std::fs::remove_file(copy.path().join("audit-checkpoints.log")).unwrap();
    let (ok, out) = verify_with(copy.path(), &vault.audit_key, &["--no-checkpoint-log"]);
    assert!(!ok && out.contains("its entries were deleted"), "{out}");
    let printed = refuses_to_start(copy.path(), &["--new-checkpoint-log"]);
    assert!(printed.contains("its entries were deleted"), "{printed}");
    // a vault never used starts (its log is empty and so is everything else)
    let fresh = Vault::init();
    fresh.serve().terminate();
}
