//! Every gate decision is audited, allow and deny, without personal data; and the vault fails
//! closed when the audit log cannot be written.

use serde_json::{Value, json};

use crate::support::Vault;

const RECORDS: &str = "/v1/subjects/cust_audit/records/customers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_audited_without_personal_data() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, created) = admin
        .post(
            RECORDS,
            json!({"purpose": "order_fulfillment", "fields": {"email": "audit.me@example.com", "name": "Audrey"}}),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["record_id"].as_str().unwrap();
    assert_eq!(
        admin
            .get(&format!("{RECORDS}?purpose=order_fulfillment&fields=email"))
            .await
            .0,
        200
    );
    // A read that names no fields records the ones it returned.
    let (status, _) = admin.get(&format!("{RECORDS}/{id}?purpose=tax_records")).await;
    assert_eq!(status, 200);
    assert_eq!(admin.get(&format!("{RECORDS}?purpose=marketing_email")).await.0, 403);
    let auditor_key = admin.principal("the-auditor", &["auditor"]).await;
    let mut auditor = server.client(&auditor_key).await;
    assert_eq!(
        auditor.get(&format!("{RECORDS}?purpose=order_fulfillment")).await.0,
        403
    );

    let (status, v) = admin.get("/v1/audit/events").await;
    assert_eq!(status, 200, "admin reads the audit log: {v}");
    let (status, v) = auditor.get("/v1/audit/events?limit=1000").await;
    assert_eq!(status, 200, "{v}");
    let entries: Vec<Value> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].clone())
        .collect();
    let find = |action: &str, decision: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["decision"] == decision)
            .cloned()
            .unwrap_or_else(|| panic!("no {action}/{decision} in {entries:#?}"))
    };
    let create = find("record.create", "allow");
    assert_eq!(create["purpose"], "order_fulfillment");
    assert_eq!(create["collection"], "customers");
    assert_eq!(create["fields"], json!(["email", "name"]));
    let read = find("record.read", "allow");
    // tax_records covers the shipping address too, but this record holds none: not read.
    assert_eq!(read["fields"], json!(["name"]));
    let list = find("record.list", "allow");
    assert_eq!(list["fields"], json!(["email"]));
    let denied = entries
        .iter()
        .find(|e| e["action"] == "record.list" && e["decision"] == "deny" && e["reason"] == "consent_required")
        .unwrap();
    assert_eq!(denied["purpose"], "marketing_email");
    assert!(
        entries.iter().any(|e| e["reason"] == "purpose_not_allowed"),
        "the auditor's refused read is audited"
    );
    // The subject appears only as a keyed hash, the same in every entry about it.
    let subject = create["subject"].as_str().unwrap();
    assert_eq!(subject.len(), 32);
    assert_eq!(denied["subject"], subject);
    let text = serde_json::to_string(&v).unwrap();
    for secret in ["audit.me@example.com", "Audrey", "cust_audit"] {
        assert!(!text.contains(secret), "the audit log holds `{secret}`");
    }
    // Reading the log is audited too, and the log pages by sequence number.
    let (_, page) = auditor.get("/v1/audit/events?limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let next = page["next_after"].as_i64().unwrap();
    let (_, rest) = auditor.get(&format!("/v1/audit/events?after={next}&limit=1000")).await;
    assert!(rest["events"][0]["seq"].as_i64().unwrap() > next);
    assert!(
        rest["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["entry"]["action"] == "audit.read")
    );

    let shipper_key = admin.principal("shipper", &["fulfillment_service"]).await;
    let (status, v) = server.client(&shipper_key).await.get("/v1/audit/events").await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("not_allowed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_closed_when_the_audit_log_cannot_be_written() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, v) = admin
        .post(
            RECORDS,
            json!({"purpose": "order_fulfillment", "fields": {"name": "Before"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");

    // Break the audit log from outside, as a full disk or a broken replica would.
    let db = vault.break_audit_log().await;

    let reply = admin
        .raw_unchecked("GET", &format!("{RECORDS}?purpose=order_fulfillment"), None)
        .await;
    assert_eq!(reply.0, 500);
    assert_eq!(reply.1["error"]["code"], "audit_unavailable");
    assert!(
        !serde_json::to_string(&reply.1).unwrap().contains("Before"),
        "no data without an audit entry"
    );
    let reply = admin
        .raw_unchecked(
            "POST",
            RECORDS,
            Some(json!({"purpose": "order_fulfillment", "fields": {"name": "During"}})),
        )
        .await;
    assert_eq!(reply.0, 500, "{}", reply.1);
    let reply = admin
        .raw_unchecked("GET", &format!("{RECORDS}?purpose=marketing_email"), None)
        .await;
    assert_eq!(reply.0, 500, "a refusal that cannot be audited fails too: {}", reply.1);

    Vault::mend_audit_log(&db).await;
    let (status, v) = admin.get(&format!("{RECORDS}?purpose=order_fulfillment")).await;
    assert_eq!(status, 200);
    let names: Vec<_> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fields"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("Before")],
        "the write refused for want of an audit entry left nothing behind"
    );
}

/// A copy of a data directory, to tamper with.
pub fn copy_of(dir: &std::path::Path) -> tempfile::TempDir {
    // (a connection closed just before may still be removing its `-wal` and `-shm` files,
    // which `cp` then finds listed but gone: copied again)
    for _ in 0..5 {
        let copy = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", dir.display()))
            .arg(copy.path())
            .status()
            .unwrap();
        if status.success() {
            return copy;
        }
    }
    panic!("{} could not be copied", dir.display());
}

/// `custodia audit verify` with the pinned key and `extra` arguments.
pub fn verify_with(dir: &std::path::Path, key: &str, extra: &[&str]) -> (bool, String) {
    let out = crate::support::custodia()
        .args(["audit", "verify", "--public-key", key, "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Opens a data directory's database as an attacker with file access would: triggers dropped.
pub async fn attacker(dir: &std::path::Path) -> sqlx::SqlitePool {
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("custodia.db").display()))
        .await
        .unwrap();
    for t in ["audit_log_no_update", "audit_log_no_delete"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER IF EXISTS {t}")))
            .execute(&db)
            .await
            .unwrap();
    }
    db
}

pub fn leaf(entry: &str) -> Vec<u8> {
    custodia_audit::leaf_hash(entry.as_bytes()).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signed_log_verifies_and_every_kind_of_tampering_is_caught() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    for i in 0..6 {
        let path = format!("/v1/subjects/cust_{i}/records/customers");
        assert_eq!(
            admin
                .post(
                    &path,
                    json!({"purpose": "order_fulfillment", "fields": {"name": format!("N{i}")}})
                )
                .await
                .0,
            201
        );
        assert_eq!(admin.get(&format!("{path}?purpose=order_fulfillment")).await.0, 200);
        assert_eq!(admin.get(&format!("{path}?purpose=marketing_email")).await.0, 403);
    }
    // The server signs checkpoints as the log grows; the public key is published.
    let (status, key) = server.anonymous().await.get("/v1/audit/public-key").await;
    assert_eq!((status, key["algorithm"].as_str()), (200, Some("ed25519")));
    // in the form `audit verify --public-key` takes: the one init printed
    assert_eq!(key["verifier_key"].as_str(), Some(vault.audit_key.as_str()), "{key}");
    let mut checkpoint = json!(null);
    for _ in 0..50 {
        let (status, v) = admin.get("/v1/audit/checkpoint").await;
        if status == 200 && v["tree_size"].as_i64().unwrap() >= 18 {
            checkpoint = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        checkpoint["note"].as_str().unwrap().starts_with("custodia-audit\n"),
        "{checkpoint}"
    );
    assert!(
        checkpoint["note"]
            .as_str()
            .unwrap()
            .contains("\n\n\u{2014} custodia-audit ")
    );
    drop(admin);
    // A client holding a connection with a request it never finishes keeps the server from
    // stopping for a bounded time only: it still stops and signs its last checkpoint.
    let mut hanging = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut hanging, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(
        server.terminate_within(std::time::Duration::from_secs(60)),
        "the server waited on an open connection"
    );
    drop(hanging);

    let verify = |dir: &std::path::Path| verify_with(dir, &vault.audit_key, &[]);
    let (ok, out) = verify(vault.path());
    assert!(ok, "{out}");
    assert!(
        out.contains("audit log intact") && out.contains("0 entries after the last checkpoint"),
        "{out}"
    );

    // The database's copy of the key replaced, nothing else yet (an attacker's first step
    // before signing a rewritten log): the pinned key tells, as the server's start does.
    let other =
        custodia_audit::note::NoteSigner::from_seed("custodia-audit", custodia_audit::note::ED25519_TYPE, &[7; 32])
            .unwrap()
            .verifier()
            .to_string();
    for (change, says) in [
        (
            format!("UPDATE meta SET value = CAST('{other}' AS BLOB) WHERE key = 'audit_public_key'"),
            "audit_public_key row) is not the key given",
        ),
        // ... or deleted
        (
            "DELETE FROM meta WHERE key = 'audit_public_key'".to_owned(),
            "audit_public_key row) is missing",
        ),
    ] {
        let copy = copy_of(vault.path());
        crate::tamper::sql(copy.path(), &[&change]).await;
        let (ok, out) = verify(copy.path());
        assert!(!ok && out.contains(says), "{change}: {out}");
    }

    // An edit of one entry.
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    let (denied,): (i64,) = sqlx::query_as("SELECT MIN(seq) FROM audit_log WHERE entry LIKE '%\"deny\"%'")
        .fetch_one(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET entry = replace(entry, '\"deny\"', '\"allow\"') WHERE seq = ?")
        .bind(denied)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let (ok, out) = verify(copy.path());
    assert!(!ok && out.contains(&format!("entry {denied} was changed")), "{out}");

    // `--output json`: one object on standard output, for scripts, whole or not.
    let json_of = |dir: &std::path::Path| {
        let out = crate::support::custodia()
            .args([
                "audit",
                "verify",
                "--output",
                "json",
                "--public-key",
                &vault.audit_key,
                "--data-dir",
            ])
            .arg(dir)
            .output()
            .unwrap();
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap())
    };
    let (code, whole) = json_of(vault.path());
    assert_eq!(code, Some(0), "{whole}");
    assert_eq!(whole["intact"], true, "{whole}");
    assert!(whole["entries"].as_u64().unwrap() >= 18, "{whole}");
    assert_eq!(whole["unsigned_tail"], 0, "{whole}");
    assert!(whole["signed_checkpoints"].as_u64().unwrap() >= 1, "{whole}");
    let (code, broken) = json_of(copy.path());
    assert_eq!(code, Some(1), "{broken}");
    assert_eq!(broken["intact"], false, "{broken}");
    // and when it cannot run, still one object, naming why
    let nowhere = copy.path().join("no-such-data-dir");
    let (code, failed) = json_of(&nowhere);
    assert_eq!(code, Some(2), "{failed}");
    assert!(
        failed["intact"].is_null() && failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    assert!(
        broken["problem"]
            .as_str()
            .unwrap()
            .contains(&format!("entry {denied} was changed")),
        "{broken}"
    );

    // An edit that also rewrites the leaf hash: the signed checkpoint catches it.
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    let entry: String = sqlx::query_scalar("SELECT entry FROM audit_log WHERE seq = ?")
        .bind(denied)
        .fetch_one(&db)
        .await
        .unwrap();
    let forged = entry.replace("\"deny\"", "\"allow\"");
    assert_ne!(forged, entry);
    sqlx::query("UPDATE audit_log SET entry = ?, leaf = ?, decision = 'allow' WHERE seq = ?")
        .bind(&forged)
        .bind(leaf(&forged))
        .bind(denied)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let (ok, out) = verify(copy.path());
    assert!(
        // (the start's checkpoint covers its entry alone, the registry it serves)
        !ok && out.contains("does not match the entries") && out.contains("positions 2 to"),
        "{out}"
    );

    // An edit of the indexed columns alone (re-attributing an entry in queries): the columns
    // must say what the hashed text says.
    for (column, value) in [
        ("principal", "'forged'"),
        ("action", "'forged'"),
        ("decision", "'forged'"),
        ("purpose", "'forged'"),
        ("subject", "'forged'"),
        ("principal", "NULL"),
        ("at", "1000"),
    ] {
        let copy = copy_of(vault.path());
        let db = attacker(copy.path()).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE audit_log SET {column} = {value} WHERE seq = 3"
        )))
        .execute(&db)
        .await
        .unwrap();
        db.close().await;
        let (ok, out) = verify(copy.path());
        assert!(!ok && out.contains("entry 3 has indexed columns"), "{column}: {out}");
    }

    // Rows taken out of (or slipped into) the subject index, or its mark moved past the log,
    // would hide entries from lookups by subject: verify compares the index with the log.
    for sql in [
        "DELETE FROM audit_subject_index WHERE seq = (SELECT MIN(seq) FROM audit_subject_index)",
        "INSERT INTO audit_subject_index (subject, seq) VALUES ('forged', 1)",
        "UPDATE audit_index_state SET upto = 1000000",
    ] {
        let copy = copy_of(vault.path());
        let db = attacker(copy.path()).await;
        // The server's job fills the index; fill it here as the job would, so it has rows.
        sqlx::query("UPDATE audit_index_state SET upto = (SELECT MAX(seq) FROM audit_log)")
            .execute(&db)
            .await
            .unwrap();
        sqlx::query(
            "INSERT OR IGNORE INTO audit_subject_index (subject, seq) SELECT subject, seq FROM audit_log \
             WHERE subject IS NOT NULL AND seq <= (SELECT upto FROM audit_index_state)",
        )
        .execute(&db)
        .await
        .unwrap();
        let (ok, out) = verify(copy.path());
        assert!(ok, "an index the job filled verifies: {out}");
        sqlx::query(sql).execute(&db).await.unwrap();
        db.close().await;
        let (ok, out) = verify(copy.path());
        assert!(
            !ok && out.contains("subject index does not match the log"),
            "{sql}: {out}"
        );
    }

    // Verification reads the log a chunk of entries per row, their texts joined by a
    // separator no canonical entry holds. An entry made to hold it (with its leaf hash
    // recomputed), here with a second entry after it, is reported, not split into two; and a
    // column turned into a BLOB (which lookups by that column would not find) is refused.
    for sql in [
        "UPDATE audit_log SET entry = entry || char(30) || entry, leaf = NULL WHERE seq = 3",
        "UPDATE audit_log SET subject = CAST(subject AS BLOB) WHERE seq = 3",
        "UPDATE audit_log SET at = CAST(CAST(at AS TEXT) AS BLOB) WHERE seq = 3",
    ] {
        let copy = copy_of(vault.path());
        let db = attacker(copy.path()).await;
        sqlx::query(sql).execute(&db).await.unwrap();
        let entry: String = sqlx::query_scalar("SELECT CAST(entry AS TEXT) FROM audit_log WHERE seq = 3")
            .fetch_one(&db)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET leaf = ? WHERE seq = 3")
            .bind(leaf(&entry))
            .execute(&db)
            .await
            .unwrap();
        db.close().await;
        let (ok, out) = verify(copy.path());
        assert!(!ok, "{sql}: {out}");
        if sql.contains("char(30)") {
            assert!(out.contains("entry 3 has indexed columns"), "{sql}: {out}");
        }
    }

    // A deletion.
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 4")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let (ok, out) = verify(copy.path());
    assert!(!ok && out.contains("entry 4 is missing"), "{out}");

    // A reordering: two entries swap places, leaf hashes and times included.
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    sqlx::query("UPDATE audit_log SET seq = -seq WHERE seq IN (2, 5)")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET seq = 5 WHERE seq = -2")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET seq = 2 WHERE seq = -5")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let (ok, out) = verify(copy.path());
    assert!(
        !ok && (out.contains("out of order") || out.contains("does not match the entries")),
        "{out}"
    );

    // An insertion in the middle, renumbering what follows so the sequence has no gap.
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    sqlx::query("UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= 3")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET seq = -seq WHERE seq < 0")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, entry, leaf, principal, action, decision, purpose, subject) \
         SELECT 3, at, entry, leaf, principal, action, decision, purpose, subject FROM audit_log WHERE seq = 2",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let (ok, out) = verify(copy.path());
    assert!(!ok && out.contains("does not match the entries"), "{out}");

    // A forged checkpoint (a signature by another key) is refused.
    let copy = copy_of(vault.path());
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", copy.path().join("custodia.db").display()))
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER audit_checkpoints_no_update")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_checkpoints SET note = replace(note, substr(note, -20, 10), 'AAAAAAAAAA')")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let (ok, out) = verify(copy.path());
    assert!(!ok && out.contains("checkpoint at size"), "{out}");
}

// An independent verifier, written after the Certificate Transparency Go library's
// (decomposition into inner and border proof parts), not after our crate's RFC 9162 loops.

type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().try_into().unwrap()
}

fn node(l: &H, r: &H) -> H {
    sha(&[&[1], l, r])
}

fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros() as usize;
    (inner, (index >> inner).count_ones() as usize)
}

fn chain_inner(mut seed: H, proof: &[H], index: u64) -> H {
    for (i, h) in proof.iter().enumerate() {
        seed = if (index >> i) & 1 == 0 {
            node(&seed, h)
        } else {
            node(h, &seed)
        };
    }
    seed
}

fn chain_inner_right(mut seed: H, proof: &[H], index: u64) -> H {
    for (i, h) in proof.iter().enumerate() {
        if (index >> i) & 1 == 1 {
            seed = node(h, &seed);
        }
    }
    seed
}

fn chain_border_right(mut seed: H, proof: &[H]) -> H {
    for h in proof {
        seed = node(h, &seed);
    }
    seed
}

fn root_from_inclusion(index: u64, size: u64, leaf: H, proof: &[H]) -> Option<H> {
    if index >= size {
        return None;
    }
    let (inner, border) = decompose(index, size);
    (proof.len() == inner + border)
        .then(|| chain_border_right(chain_inner(leaf, &proof[..inner], index), &proof[inner..]))
}

fn consistent(size1: u64, size2: u64, proof: &[H], root1: &H, root2: &H) -> bool {
    if size1 == 0 || size1 >= size2 {
        return false;
    }
    let (mut inner, border) = decompose(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    inner -= shift;
    let (seed, start) = if size1 == 1 << shift {
        (*root1, 0)
    } else {
        (proof[0], 1)
    };
    if proof.len() != start + inner + border {
        return false;
    }
    let proof = &proof[start..];
    let mask = (size1 - 1) >> shift;
    let r1 = chain_border_right(chain_inner_right(seed, &proof[..inner], mask), &proof[inner..]);
    let r2 = chain_border_right(chain_inner(seed, &proof[..inner], mask), &proof[inner..]);
    &r1 == root1 && &r2 == root2
}

fn b64(s: &Value) -> H {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

async fn checkpoint_at_least(admin: &mut crate::support::Client, size: i64) -> Value {
    for _ in 0..60 {
        let (status, v) = admin.get("/v1/audit/checkpoint").await;
        if status == 200 && v["tree_size"].as_i64().unwrap() >= size {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of size {size} appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_from_the_api_verify_independently() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    for i in 0..5 {
        let path = format!("/v1/subjects/p{i}/records/customers");
        assert_eq!(
            admin
                .post(&path, json!({"purpose": "order_fulfillment", "fields": {"name": "N"}}))
                .await
                .0,
            201
        );
    }
    let first = checkpoint_at_least(&mut admin, 5).await;
    for i in 5..13 {
        let path = format!("/v1/subjects/p{i}/records/customers");
        assert_eq!(admin.get(&format!("{path}?purpose=order_fulfillment")).await.0, 200);
    }
    let (size1, root1) = (first["tree_size"].as_u64().unwrap(), b64(&first["root"]));
    let second = checkpoint_at_least(&mut admin, size1 as i64 + 8).await;
    let (size2, root2) = (second["tree_size"].as_u64().unwrap(), b64(&second["root"]));

    let (_, events) = admin.get(&format!("/v1/audit/events?limit={size2}")).await;
    let events = events["events"].as_array().unwrap().clone();
    for index in [0, 1, size1 - 1, size2 / 2, size2 - 1] {
        let (status, p) = admin
            .get(&format!("/v1/audit/proof/inclusion?index={index}&tree_size={size2}"))
            .await;
        assert_eq!(status, 200, "{p}");
        let entry = events[index as usize]["canonical"].as_str().unwrap().to_owned();
        let leaf = b64(&p["leaf_hash"]);
        assert_eq!(
            leaf,
            sha(&[&[0], entry.as_bytes()]),
            "entry {index} is the leaf the proof is about"
        );
        let proof: Vec<H> = p["proof"].as_array().unwrap().iter().map(b64).collect();
        assert_eq!(
            root_from_inclusion(index, size2, leaf, &proof),
            Some(root2),
            "inclusion of {index}"
        );
        let mut tampered = proof.clone();
        if let Some(h) = tampered.first_mut() {
            h[0] ^= 1;
            assert_ne!(root_from_inclusion(index, size2, leaf, &tampered), Some(root2));
        }
    }
    let (status, c) = admin
        .get(&format!("/v1/audit/proof/consistency?from={size1}&to={size2}"))
        .await;
    assert_eq!(status, 200, "{c}");
    let proof: Vec<H> = c["proof"].as_array().unwrap().iter().map(b64).collect();
    assert!(
        consistent(size1, size2, &proof, &root1, &root2),
        "the later checkpoint extends the earlier one"
    );
    let mut forked = root1;
    forked[5] ^= 0xff;
    assert!(
        !consistent(size1, size2, &proof, &forked, &root2),
        "a forked history does not verify"
    );

    let (status, v) = admin
        .get(&format!("/v1/audit/proof/inclusion?index={size2}&tree_size={size2}"))
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_proof_request"))
    );
    let (status, _) = admin.get("/v1/audit/proof/consistency?from=9&to=3").await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_answers_who_touched_a_subject() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    for s in ["alpha", "beta", "alpha"] {
        let path = format!("/v1/subjects/{s}/records/customers");
        let email = format!("a@{s}.example");
        assert_eq!(
            admin
                .post(
                    &path,
                    json!({"purpose": "order_fulfillment", "fields": {"name": "N", "email": email}})
                )
                .await
                .0,
            201
        );
    }
    assert_eq!(
        admin
            .get("/v1/subjects/alpha/records/customers?purpose=order_fulfillment")
            .await
            .0,
        200
    );
    let (status, v) = admin.get("/v1/audit/events?subject_id=alpha").await;
    assert_eq!(status, 200, "{v}");
    let actions: Vec<_> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"]["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["record.create", "record.create", "record.list"]);
    let (_, v) = admin.get("/v1/audit/events?subject_id=alpha&action=record.list").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    let search =
        json!({"collection": "customers", "field": "email", "value": "a@alpha.example", "purpose": "customer_support"});
    assert_eq!(admin.post("/v1/search", search).await.0, 200);
    let (_, v) = admin
        .get("/v1/audit/events?subject_id=alpha&action=record.search")
        .await;
    assert_eq!(
        v["events"].as_array().unwrap().len(),
        1,
        "a search that found the subject is an entry about it: {v}"
    );
    let (_, v) = admin.get("/v1/audit/events?subject_id=beta&action=record.search").await;
    assert!(
        v["events"].as_array().unwrap().is_empty(),
        "a search that did not find beta is not about beta"
    );
    let (_, v) = admin.get("/v1/audit/events?subject_id=gamma").await;
    assert!(v["events"].as_array().unwrap().is_empty());
    let (_, v) = admin.get("/v1/audit/events?subject_id=beta&limit=1").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    let (_, v) = admin.get("/v1/audit/events?from=4102444800000").await;
    assert!(v["events"].as_array().unwrap().is_empty(), "nothing from the year 2100");
    let (status, v) = admin.get("/v1/audit/events?subject_id=alice@example.com").await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_verifies_without_the_database() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    for i in 0..7 {
        let path = format!("/v1/subjects/e{i}/records/customers");
        assert_eq!(
            admin
                .post(&path, json!({"purpose": "order_fulfillment", "fields": {"name": "N"}}))
                .await
                .0,
            201
        );
    }
    drop(admin);
    server.terminate();
    let out = crate::support::custodia()
        .args(["audit", "export", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let head = &lines[0];
    assert_eq!(head["type"], "checkpoint");
    let size = head["tree_size"].as_u64().unwrap();
    assert_eq!(lines.len() as u64, size + 1);
    let root = b64(&head["root"]);
    // The signed note, checked with the published key alone.
    let note = head["note"].as_str().unwrap();
    let (body, sig_line) = note.split_once("\n\n").unwrap();
    use base64::Engine;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig_line.trim_end().rsplit(' ').next().unwrap())
        .unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(head["public_key"].as_str().unwrap())
        .unwrap();
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &key)
        .verify(format!("{body}\n").as_bytes(), &sig[4..])
        .expect("the checkpoint signature verifies");
    assert!(body.ends_with(&format!("{size}\n{}", head["root"].as_str().unwrap())));
    for line in &lines[1..] {
        let index = line["index"].as_u64().unwrap();
        let leaf = sha(&[&[0], line["entry"].as_str().unwrap().as_bytes()]);
        assert_eq!(leaf, b64(&line["leaf_hash"]));
        let proof: Vec<H> = line["proof"].as_array().unwrap().iter().map(b64).collect();
        assert_eq!(
            root_from_inclusion(index, size, leaf, &proof),
            Some(root),
            "entry {index}"
        );
    }
    // A log changed under its checkpoints is not exported (its proofs would all fail, and the
    // file would pass for evidence).
    let copy = copy_of(vault.path());
    let db = attacker(copy.path()).await;
    sqlx::query("UPDATE audit_log SET entry = replace(entry, '\"allow\"', '\"deny\"') WHERE seq = 3")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let out = crate::support::custodia()
        .args(["audit", "export", "--data-dir"])
        .arg(copy.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not exported") && out.stdout.is_empty(), "{err}");
}

/// A registry may name a searchable field `subject` in a collection `audit`: its blind index
/// and the audit log's subject HMAC are keyed in separate domains, so the digest of a value in
/// that field never equals the audit digest of the subject with that id (in v0.1 they were
/// the same HMAC), and search and the audit filter by subject both still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_field_audit_subject_does_not_share_the_audit_subject_digest() {
    let vault = Vault::init();
    let registry = vault.path().join("registry.toml");
    let text = std::fs::read_to_string(&registry).unwrap();
    let fields = r#"fields = ["customers.email", "customers.name", "customers.phone", "customers.shipping_address"]"#;
    assert!(text.contains(fields), "the example registry's order_fulfillment fields");
    let text = text.replacen(fields, &fields.replacen('[', "[\"audit.subject\", ", 1), 1)
        + "\n[collections.audit]\ndescription = \"Named like the audit log.\"\n\
           [collections.audit.fields.subject]\ncategory = \"user.unique_id\"\ntype = \"string\"\nsearchable = true\n";
    std::fs::write(&registry, text).unwrap();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;

    let (status, v) = admin
        .post(
            "/v1/subjects/cust_dom/records/audit",
            json!({"purpose": "order_fulfillment", "fields": {"subject": "cust_dom"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let record_id = v["record_id"].clone();
    let (status, v) = admin
        .post(
            "/v1/search",
            json!({"collection": "audit", "field": "subject", "value": "cust_dom", "purpose": "order_fulfillment"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["matches"],
        json!([{"subject_id": "cust_dom", "record_id": record_id}])
    );

    // The audit entries of the subject: the write and the search, found by its HMAC.
    let (status, v) = admin.get("/v1/audit/events?subject_id=cust_dom").await;
    assert_eq!(status, 200, "{v}");
    let events = v["events"].as_array().unwrap();
    let actions: Vec<_> = events.iter().map(|e| e["entry"]["action"].as_str().unwrap()).collect();
    assert!(
        actions.contains(&"record.create") && actions.contains(&"record.search"),
        "{actions:?}"
    );
    let audit_digest = events[0]["entry"]["subject"].as_str().unwrap().to_owned();
    assert!(events.iter().all(|e| e["entry"]["subject"] == audit_digest.as_str()));

    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", vault.path().join("custodia.db").display()))
        .await
        .unwrap();
    let index: Vec<(String,)> =
        sqlx::query_as("SELECT lower(hex(digest)) FROM blind_index WHERE collection = 'audit' AND field = 'subject'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(index.len(), 1, "one blind index entry: {index:?}");
    assert_eq!(index[0].0.len(), audit_digest.len(), "both are 16-byte digests in hex");
    assert_ne!(
        index[0].0, audit_digest,
        "the field's blind index of the id and the audit subject digest of the id differ"
    );
}
