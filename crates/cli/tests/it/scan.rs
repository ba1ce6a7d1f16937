//! `custodia scan`, `custodia redact` and `POST /v1/scan`, `/v1/redact`: a mixed directory
//! of text, CSV, JSON, NDJSON and gzip; offsets checked against the files in all three
//! output formats; `--fail-on` exit codes; redaction leaves nothing the scan finds;
//! database discovery on SQLite and PostgreSQL.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Vault, custodia, fresh_postgres_database, postgres_url};

/// (file, value, entity) planted in the fixture.
const PLANTED: &[(&str, &str, &str)] = &[
    ("app.log", "bob@example.com", "EMAIL_ADDRESS"),
    ("app.log", "203.0.113.9", "IP_ADDRESS"),
    ("app.log", "078-05-1123", "US_SSN"),
    ("app.log", "4111 1111 1111 1111", "CREDIT_CARD"),
    ("customers.csv", "Jennifer Smith", "PERSON"),
    ("customers.csv", "jen@example.org", "EMAIL_ADDRESS"),
    ("customers.csv", "(415) 555-0132", "PHONE_NUMBER"),
    ("customers.csv", "DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
    ("sub/data.json", "x@example.com", "EMAIL_ADDRESS"),
    ("sub/data.json", "2001:db8::1", "IP_ADDRESS"),
    ("sub/events.ndjson", "+44 20 7123 4567", "PHONE_NUMBER"),
    ("sub/old.log.gz", "00:1A:2B:3C:4D:5E", "MAC_ADDRESS"),
    ("sub/old.log.gz", "AA 12 34 56 B", "UK_NINO"),
];

fn fixture(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("app.log"),
        "2026-11-01 INFO nothing here\nUser bob@example.com logged in from 203.0.113.9\nSSN: 078-05-1123, card 4111 1111 1111 1111\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("customers.csv"),
        "name,email,phone,note\nJennifer Smith,jen@example.org,(415) 555-0132,\"wire to IBAN DE89 3704 0044 0532 0130 00, \"\"soon\"\"\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/data.json"),
        "{\n  \"user\": {\"email\": \"x@example.com\", \"ip\": \"2001:db8::1\"}\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/events.ndjson"),
        "{\"msg\": \"nothing\"}\n{\"msg\": \"call +44 20 7123 4567\"}\n",
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all("boot ok\nmac 00:1A:2B:3C:4D:5E nino AA 12 34 56 B\n".as_bytes())
        .unwrap();
    std::fs::write(dir.join("sub/old.log.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.join("photo.bin"), b"\x00\x01binary bob@example.com").unwrap();
    std::fs::write(dir.join(".gitignore"), "secret.txt\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "ignored 078-05-1123\n").unwrap();
}

/// The file's content as scanned (gzip decompressed).
fn content(dir: &Path, file: &str) -> Vec<u8> {
    let raw = std::fs::read(dir.join(file)).unwrap();
    if file.ends_with(".gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
        out
    } else {
        raw
    }
}

fn line_col(text: &[u8], offset: usize) -> (u64, u64) {
    let before = &text[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() as u64 + 1;
    (line, col)
}

fn scan(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = custodia()
        .current_dir(dir)
        .arg("scan")
        .args(args)
        .arg("--no-progress")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rel(path: &str) -> &str {
    path.strip_prefix("./").unwrap_or(path)
}

#[test]
fn mixed_directory_in_json_table_and_sarif() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let (code, out, err) = scan(dir.path(), &["--format", "json", "."]);
    assert_eq!(code, 0, "{err}");
    let found: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (file, value, entity) in PLANTED {
        let hit = found.iter().find(|f| {
            let text = content(dir.path(), rel(f["path"].as_str().unwrap()));
            let (s, e) = (
                f["start"].as_u64().unwrap() as usize,
                f["end"].as_u64().unwrap() as usize,
            );
            rel(f["path"].as_str().unwrap()) == *file && f["entity_type"] == *entity && &text[s..e] == value.as_bytes()
        });
        let hit = hit.unwrap_or_else(|| panic!("{entity} {value:?} in {file} not found in {out}"));
        let text = content(dir.path(), file);
        let (line, col) = line_col(&text, hit["start"].as_u64().unwrap() as usize);
        assert_eq!(
            (hit["line"].as_u64().unwrap(), hit["column"].as_u64().unwrap()),
            (line, col),
            "{hit}"
        );
        assert!(hit["score"].as_f64().unwrap() > 0.0 && hit["score"].as_f64().unwrap() <= 1.0);
        assert!(!hit["evidence"].as_array().unwrap().is_empty());
    }
    // every finding's offsets point into its file, and nothing comes from ignored or binary files
    for f in &found {
        let path = rel(f["path"].as_str().unwrap());
        assert!(path != "secret.txt" && path != "photo.bin", "{f}");
        assert!(content(dir.path(), path).len() >= f["end"].as_u64().unwrap() as usize);
    }
    let json_ptr = found
        .iter()
        .find(|f| f["entity_type"] == "IP_ADDRESS" && rel(f["path"].as_str().unwrap()) == "sub/data.json");
    assert_eq!(json_ptr.unwrap()["pointer"], "/user/ip");
    let csv_field = found
        .iter()
        .find(|f| f["entity_type"] == "PHONE_NUMBER" && rel(f["path"].as_str().unwrap()) == "customers.csv");
    assert_eq!(csv_field.unwrap()["field"], "phone");
    assert!(err.contains("photo.bin: skipped (binary)"), "{err}");
    assert!(!out.contains("bob@example.com"), "values are never printed");

    // the table: one line per finding, path:line:column, then the summary with CSV columns
    let (code, table, _) = scan(dir.path(), &["--format", "table", "."]);
    assert_eq!(code, 0);
    assert!(table.contains("app.log:3:6  US_SSN"), "{table}");
    assert!(
        table.contains(&format!("{} finding(s) in 6 file(s) scanned", found.len())),
        "{table}"
    );
    assert!(
        table.contains("phone") && table.contains("PHONE_NUMBER in 1 of 1 rows"),
        "{table}"
    );

    // SARIF 2.1.0 with the same findings and regions
    let (code, sarif, _) = scan(dir.path(), &["--format", "sarif", "."]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), found.len());
    for (r, f) in results.iter().zip(&found) {
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert_eq!(r["ruleId"], f["entity_type"]);
        assert_eq!(region["byteOffset"], f["start"]);
        assert_eq!(
            region["byteLength"].as_u64(),
            Some(f["end"].as_u64().unwrap() - f["start"].as_u64().unwrap())
        );
        assert_eq!(
            (&region["startLine"], &region["startColumn"]),
            (&f["line"], &f["column"])
        );
    }
    let rules: Vec<&str> = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"US_SSN"));

    // the ignored file is said to be left out; --no-ignore takes it in
    let (_, _, said) = scan(dir.path(), &["--format", "json", "."]);
    assert!(
        said.contains("1 path(s) left out by .gitignore or .ignore rules") && said.contains("secret.txt"),
        "{said}"
    );
    let (_, all, said) = scan(dir.path(), &["--format", "json", "--no-ignore", "."]);
    assert!(all.contains("secret.txt"));
    assert!(!said.contains("left out"), "{said}");
}

#[test]
fn fail_on_gates_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    assert_eq!(scan(dir.path(), &["--format", "json", "--fail-on", "US_SSN", "."]).0, 1);
    assert_eq!(
        scan(dir.path(), &["--format", "json", "--fail-on", "any", "sub/data.json"]).0,
        1
    );
    assert_eq!(
        scan(
            dir.path(),
            &["--format", "json", "--fail-on", "CRYPTO,US_PASSPORT", "."]
        )
        .0,
        0
    );
    assert_eq!(
        scan(
            dir.path(),
            &[
                "--format",
                "json",
                "--fail-on",
                "US_SSN",
                "--entities",
                "EMAIL_ADDRESS,US_SSN",
                "sub"
            ]
        )
        .0,
        0
    );
    let (code, _, err) = scan(dir.path(), &["--format", "json", "--fail-on", "NOT_AN_ENTITY", "."]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = scan(dir.path(), &["--format", "json", "missing.txt"]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.txt: no such file"), "{err}");
    let (code, _, err) = scan(dir.path(), &["--entities", "BOGUS", "."]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown entity type `BOGUS`"), "{err}");
    // user-defined recognizers take part in --entities and --fail-on
    std::fs::write(
        dir.path().join("ours.toml"),
        "[[recognizer]]\nentity = \"EMPLOYEE_ID\"\npattern = \"EMP-[0-9]{6}\"\nscore = 0.6\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("hr.txt"), "badge EMP-004211\n").unwrap();
    let (code, out, err) = scan(
        dir.path(),
        &[
            "--format",
            "json",
            "--recognizers",
            "ours.toml",
            "--entities",
            "EMPLOYEE_ID",
            "--fail-on",
            "EMPLOYEE_ID",
            "hr.txt",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["entity_type"].as_str(), v["start"].as_u64()),
        (Some("EMPLOYEE_ID"), Some(6))
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[recognizer]]\nentity = \"X\"\npattern = \"(\"\n",
    )
    .unwrap();
    let (code, _, err) = scan(dir.path(), &["--recognizers", "bad.toml", "hr.txt"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml") && err.contains("invalid regex"), "{err}");
    let (code, _, err) = scan(dir.path(), &["--format", "xml", "."]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown output format"), "{err}");
}

fn run_with_stdin(args: &[&str], input: &[u8], dir: &Path) -> (i32, Vec<u8>, String) {
    let mut child = custodia()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn redact_removes_what_scan_finds() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let key = custodia().args(["redact", "--new-key"]).output().unwrap();
    let key_hex = String::from_utf8(key.stdout).unwrap();
    assert_eq!(key_hex.trim().len(), 64);
    std::fs::write(dir.path().join("key"), &key_hex).unwrap();
    for file in [
        "app.log",
        "customers.csv",
        "sub/data.json",
        "sub/events.ndjson",
        "sub/old.log.gz",
    ] {
        let out = custodia()
            .current_dir(dir.path())
            .args([
                "redact",
                file,
                "--key-file",
                "key",
                "--operator",
                "EMAIL_ADDRESS=hash",
                "--operator",
                "PHONE_NUMBER=encrypt",
            ])
            .args(["--operator", "CREDIT_CARD=mask:4"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        let redacted = out.stdout;
        for (f, value, _) in PLANTED {
            if f == &file {
                assert!(
                    !String::from_utf8_lossy(&redacted).contains(value),
                    "{value} left in {file}"
                );
            }
        }
        // the redacted content, scanned in the same format, holds nothing
        let name = dir
            .path()
            .join(format!("redacted-{}", file.replace('/', "-").trim_end_matches(".gz")));
        std::fs::write(&name, &redacted).unwrap();
        let (code, out, err) = scan(
            dir.path(),
            &["--format", "json", "--fail-on", "any", name.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{file} redacted still has: {out}{err}");
        // structure survives: JSON stays JSON
        if file.ends_with(".json") {
            serde_json::from_slice::<Value>(&redacted).unwrap();
        }
    }
    // keyed hashes are stable across runs; encryption reverses with the key only
    let once = run_with_stdin(
        &["redact", "--key-file", "key", "--default", "hash"],
        b"mail bob@example.com",
        dir.path(),
    )
    .1;
    let twice = run_with_stdin(
        &["redact", "--key-file", "key", "--default", "hash"],
        b"mail bob@example.com",
        dir.path(),
    )
    .1;
    assert_eq!(once, twice);
    assert!(String::from_utf8_lossy(&once).starts_with("mail <EMAIL_ADDRESS:"));
    let (_, sealed, _) = run_with_stdin(
        &["redact", "--key-file", "key", "--default", "encrypt"],
        b"call +44 20 7123 4567 now",
        dir.path(),
    );
    let (code, opened, _) = run_with_stdin(&["redact", "--reveal", "--key-file", "key"], &sealed, dir.path());
    assert_eq!((code, opened.as_slice()), (0, b"call +44 20 7123 4567 now".as_slice()));
    std::fs::write(dir.path().join("other"), "11".repeat(32)).unwrap();
    let (code, _, err) = run_with_stdin(&["redact", "--reveal", "--key-file", "other"], &sealed, dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("wrong key"), "{err}");
    // a run that fails leaves no `--out` file behind, not even an empty one
    let (code, _, err) = run_with_stdin(
        &["redact", "--reveal", "--key-file", "other", "--out", "opened.txt"],
        &sealed,
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.contains("opened"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let (code, _, err) = run_with_stdin(
        &["redact", "--reveal", "--key-file", "key", "--out", "opened.txt"],
        &sealed,
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(content(dir.path(), "opened.txt"), b"call +44 20 7123 4567 now");
    // a file replaced keeps its permissions; a symbolic link is written through, not replaced
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path().join("opened.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("opened.txt", dir.path().join("link.txt")).unwrap();
    let (code, _, err) = run_with_stdin(&["redact", "--out", "link.txt"], b"mail bob@example.com", dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::symlink_metadata(dir.path().join("link.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(content(dir.path(), "opened.txt"), b"mail <EMAIL_ADDRESS>");
    let (code, _, err) = run_with_stdin(&["redact", "--out", "opened.txt"], b"ssn 078-05-1123", dir.path());
    assert_eq!(code, 0, "{err}");
    let mode = std::fs::metadata(dir.path().join("opened.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // operators that need a key refuse to run without one
    let (code, _, err) = run_with_stdin(&["redact", "--default", "hash"], b"x", dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("needs a key"), "{err}");
}

/// A path named on the command line is read whatever it is (`<(git show …)`, `/dev/stdin`,
/// a FIFO): a CI gate never passes one over with exit 0. In a directory, a symbolic link is
/// not followed and says so.
#[test]
fn named_streams_are_read_and_links_in_directories_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_with_stdin(
        &["scan", "--format", "json", "--fail-on", "any", "/dev/stdin"],
        b"card 4111 1111 1111 1111\n",
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("CREDIT_CARD"), "{err}");
    std::fs::create_dir(dir.path().join("tree")).unwrap();
    std::fs::write(dir.path().join("outside.txt"), "ssn 078-05-1123\n").unwrap();
    std::os::unix::fs::symlink("../outside.txt", dir.path().join("tree/link.txt")).unwrap();
    let (code, out, err) = scan(dir.path(), &["tree", "--format", "json", "--fail-on", "any"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("link.txt: skipped (symbolic link, not followed)"), "{err}");
    assert!(err.contains("1 skipped"), "{err}");
    // a loop of links is named as such, not as a missing file
    std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
    let (code, _, err) = scan(dir.path(), &["loop"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("no such file"), "{err}");
}

/// Text in UTF-16 (PowerShell's `>`, Excel's "Unicode text") is read as text, scanned and
/// redacted, not passed over as binary; a gzip file of a binary is binary.
#[test]
fn utf16_text_is_read_and_gzip_binaries_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Kontakt: j.mueller@web.de\r\n";
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut be = vec![0xFE, 0xFF];
    be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    std::fs::write(dir.path().join("le.log"), &le).unwrap();
    std::fs::write(dir.path().join("be.log"), &be).unwrap();
    let (code, out, err) = scan(
        dir.path(),
        &["le.log", "be.log", "--format", "json", "--fail-on", "any"],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.matches("EMAIL_ADDRESS").count(), 2, "{out}");
    assert!(
        err.contains("read as UTF-16LE") && err.contains("read as UTF-16BE"),
        "{err}"
    );
    let (code, redacted, err) = run_with_stdin(&["redact", "-"], &le, dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8_lossy(&redacted), "Kontakt: <EMAIL_ADDRESS>\r\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"\x7fELF\x02\x01\x01\0\0\0 jo@example.com 4111111111111111")
        .unwrap();
    std::fs::write(dir.path().join("tool.gz"), gz.finish().unwrap()).unwrap();
    let (code, out, err) = scan(dir.path(), &["tool.gz", "--format", "json"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("tool.gz: skipped (binary, gzip-compressed)"), "{err}");
}

#[test]
fn stdin_is_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run_with_stdin(&["scan", "--format", "json", "-"], b"ssn 078-05-1123\n", dir.path());
    assert_eq!(code, 0);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (v["path"].as_str(), v["entity_type"].as_str(), v["start"].as_u64()),
        (Some("-"), Some("US_SSN"), Some(4))
    );
    // /dev/null for standard input (a CI runner's) is no input: `.` is scanned
    std::fs::write(dir.path().join("leak.txt"), "ssn 078-05-1123\n").unwrap();
    let out = custodia()
        .current_dir(dir.path())
        .args(["scan", "--format", "json", "--fail-on", "any"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("leak.txt"));
}

fn discovery_checks(out: &str) {
    assert!(out.contains("[collections.customers.fields.email]"), "{out}");
    assert!(out.contains("category = \"user.contact.email\""), "{out}");
    assert!(
        out.contains("[collections.customers.fields.card]") && out.contains("type = \"card_number\""),
        "{out}"
    );
    assert!(
        out.contains("[collections.customers.fields.full_name]") && out.contains("category = \"user.name\""),
        "{out}"
    );
    assert!(
        !out.contains("fields.notes]") && !out.contains("fields.created_at]"),
        "{out}"
    );
    // (The sampled card is 4111 1111 1111 1111; the database's name, a process id, may hold
    // "4111" by chance.)
    assert!(
        !out.contains("1111 1111") && !out.contains("1111111111"),
        "no sampled value is printed"
    );
}

const TABLE_SQL: &str =
    "CREATE TABLE customers (id integer, full_name text, email text, card text, created_at text, notes text)";

fn rows() -> Vec<String> {
    (0..10)
        .map(|i| {
            format!(
                "INSERT INTO customers VALUES ({i}, '{}', 'user{i}@example.com', '4111 1111 1111 1111', '2024-01-0{}', 'ok')",
                if i % 2 == 0 { "Jennifer Smith" } else { "Robert Johnson" },
                i % 9 + 1
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_discovery_on_sqlite() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query(TABLE_SQL).execute(&mut conn).await.unwrap();
    for r in rows() {
        sqlx::query(sqlx::AssertSqlSafe(r)).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let db = format!("sqlite:{}", path.display());
    let (code, out, err) = scan(dir.path(), &["--format", "table", "--db", &db]);
    assert_eq!(code, 0, "{err}");
    discovery_checks(&out);
    // the suggested entries are a valid registry: appended to the example (its own
    // `customers` renamed away), `custodia check` accepts them
    let vault = Vault::init();
    let registry = vault.path().join("registry.toml");
    let suggestion = &out[out.find("# Registry entries").unwrap()..];
    let mut text = std::fs::read_to_string(&registry).unwrap();
    text.push_str(&suggestion.replace("collections.customers", "collections.shop_customers"));
    std::fs::write(&registry, text).unwrap();
    let check = custodia().arg("check").arg(&registry).output().unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let (code, _, err) = scan(dir.path(), &["--db", "mysql://x"]);
    assert_eq!(code, 2);
    assert!(err.contains("sqlite:PATH or a postgres:// URL"), "{err}");
    // what applies to files only is refused with --db, not passed over (a gate that
    // never fails)
    for extra in [&["--fail-on", "any"][..], &["--baseline", "b.json"], &["some/path"]] {
        let mut args = vec!["--db", db.as_str()];
        args.extend_from_slice(extra);
        let (code, _, err) = scan(dir.path(), &args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains("cannot be used with"), "{err}");
    }
    // a table or column named by personal data is printed by its place
    let odd = dir.path().join("odd.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&odd)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query(r#"CREATE TABLE "quagga77@example.org" ("note" TEXT, "Anna Schmidt" TEXT)"#)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(r#"INSERT INTO "quagga77@example.org" VALUES ('hello', 'x')"#)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let db = format!("sqlite:{}", odd.display());
    for format in ["table", "json"] {
        let (code, out, err) = scan(dir.path(), &["--format", format, "--db", &db]);
        assert_eq!(code, 0, "{err}");
        assert!(!out.contains("quagga") && !out.contains("Schmidt"), "{out}");
        assert!(out.contains("table_1") && out.contains("column_2"), "{out}");
    }
}

#[test]
fn database_discovery_on_postgres() {
    let Some(url) = postgres_url() else {
        assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
        return;
    };
    let db = fresh_postgres_database(&url);
    let mut sql = vec![TABLE_SQL.to_owned()];
    sql.extend(rows());
    let out = Command::new("psql")
        .arg(&db)
        .arg("-qc")
        .arg(sql.join("; "))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = scan(dir.path(), &["--format", "table", "--sample", "5", "--db", &db]);
    assert_eq!(code, 0, "{err}");
    discovery_checks(&out);
    assert!(out.contains("up to 5 rows"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_and_redact_over_http() {
    let vault = Vault::init();
    let server = vault.serve();
    let (status, _) = server.anonymous().await.post("/v1/scan", json!({"text": "x"})).await;
    assert_eq!(status, 401);
    let mut admin = server.client(&vault.token).await;
    let text = "Dear Jennifer Smith,\nyour card 4111 1111 1111 1111 and mail bob@example.com, ssn 078-05-1123.";
    let (status, v) = admin.post("/v1/scan", json!({"text": text})).await;
    assert_eq!(status, 200, "{v}");
    for f in v["findings"].as_array().unwrap() {
        let (s, e) = (
            f["start"].as_u64().unwrap() as usize,
            f["end"].as_u64().unwrap() as usize,
        );
        let (line, col) = line_col(text.as_bytes(), s);
        assert_eq!(
            (f["line"].as_u64().unwrap(), f["column"].as_u64().unwrap()),
            (line, col)
        );
        let value = &text[s..e];
        let expected = match f["entity_type"].as_str().unwrap() {
            "PERSON" => "Jennifer Smith",
            "CREDIT_CARD" => "4111 1111 1111 1111",
            "EMAIL_ADDRESS" => "bob@example.com",
            "US_SSN" => "078-05-1123",
            other => panic!("unexpected {other} {value:?}"),
        };
        assert_eq!(value, expected);
    }
    assert_eq!(v["counts"].as_object().unwrap().len(), 4, "{v}");
    let (status, v) = admin
        .post(
            "/v1/scan",
            json!({"text": text, "entities": ["US_SSN"], "min_score": 0.9}),
        )
        .await;
    assert_eq!((status, v["findings"].as_array().unwrap().len()), (200, 0), "{v}");
    let (status, v) = admin
        .post("/v1/scan", json!({"text": text, "entities": ["NOPE"]}))
        .await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("entities")), "{v}");
    let (status, v) = admin.post("/v1/scan", json!({"text": text, "min_score": 3})).await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("min_score")), "{v}");
    // a scan audited as allowed is one that ran: the two refused above left no entry
    let scans = |page: &serde_json::Value| page["events"].as_array().map_or(0, Vec::len);
    let (_, page) = admin.get("/v1/audit/events?action=pii.scan").await;
    let audited = scans(&page);
    let (status, _) = admin
        .post("/v1/scan", json!({"text": text, "entities": ["NOPE"]}))
        .await;
    assert_eq!(status, 400);
    let (_, page) = admin.get("/v1/audit/events?action=pii.scan").await;
    assert_eq!(scans(&page), audited, "{page}");
    let (status, _) = admin.post("/v1/scan", json!({"text": text})).await;
    assert_eq!(status, 200);
    let (_, page) = admin.get("/v1/audit/events?action=pii.scan").await;
    assert_eq!(scans(&page), audited + 1, "{page}");

    let ops = json!({
        "EMAIL_ADDRESS": {"type": "hash"},
        "US_SSN": {"type": "encrypt"},
        "PERSON": {"type": "mask", "keep_last": 2},
        "CREDIT_CARD": {"type": "tokenize", "subject_id": "cust_r", "collection": "customers", "field": "card_number",
                        "purpose": "payment", "token_kind": "format_preserving"},
    });
    let (status, v) = admin.post("/v1/redact", json!({"text": text, "operators": ops})).await;
    assert_eq!(status, 200, "{v}");
    let out = v["text"].as_str().unwrap();
    for value in [
        "Jennifer Smith",
        "4111 1111 1111 1111",
        "bob@example.com",
        "078-05-1123",
    ] {
        assert!(!out.contains(value), "{value} left in {out}");
    }
    assert!(
        out.contains("******** ***th") && out.contains("<EMAIL_ADDRESS:") && out.contains("[enc:US_SSN:"),
        "{out}"
    );
    assert_eq!(v["redactions"].as_array().unwrap().len(), 4);
    // the token stands for the card in the vault
    let token = v["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operator"] == "tokenize")
        .unwrap();
    assert_eq!(token["entity_type"], "CREDIT_CARD");
    let (_, again) = admin.post("/v1/redact", json!({"text": text, "operators": ops})).await;
    let hash = |t: &str| t.split("<EMAIL_ADDRESS:").nth(1).map(|s| s[..64].to_owned());
    assert_eq!(
        hash(out),
        hash(again["text"].as_str().unwrap()),
        "keyed hashes are stable"
    );
    // a card in a logged query string, URL-encoded: found whole, and the vault is given the
    // card, not its escapes (which it would refuse as no card number)
    let logged = "GET /pay?card=4111%201111%201111%201111&amount=12";
    let (status, v) = admin
        .post(
            "/v1/redact",
            json!({"text": logged, "operators": {"CREDIT_CARD": ops["CREDIT_CARD"]}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let out = v["text"].as_str().unwrap();
    assert!(
        out.starts_with("GET /pay?card=") && out.ends_with("&amount=12"),
        "{out}"
    );
    assert!(!out.contains("4111%20") && !out.contains('%'), "{out}");

    // Malformed (400), or well-formed parts that do not go together (422).
    for (body, status, field) in [
        (
            json!({"text": text, "operators": {"EMAIL_ADDRESS": {"type": "shred"}}}),
            400,
            "operators.EMAIL_ADDRESS.type",
        ),
        (
            json!({"text": text, "operators": {"NOPE": {"type": "mask"}}}),
            400,
            "operators",
        ),
        (
            json!({"text": text, "operators": {"CREDIT_CARD": {"type": "tokenize"}}}),
            422,
            "operators.CREDIT_CARD.subject_id",
        ),
        (
            json!({"text": text, "operators": {"EMAIL_ADDRESS": {"type": "hash", "keep_last": 2}}}),
            422,
            "operators.EMAIL_ADDRESS.keep_last",
        ),
        (
            json!({"text": text, "operators": {"EMAIL_ADDRESS": {"type": "mask", "keep_last": 65}}}),
            400,
            "operators.EMAIL_ADDRESS.keep_last",
        ),
        (json!({"text": text, "entities": []}), 400, "entities"),
    ] {
        let (status_got, v) = admin.post("/v1/redact", body).await;
        assert_eq!((status_got, v["error"]["field"].as_str()), (status, Some(field)), "{v}");
    }
    // tokenization is purpose-bound like POST /v1/tokens
    let bad_purpose = json!({"text": text, "operators": {"CREDIT_CARD": {"type": "tokenize", "subject_id": "cust_r",
        "collection": "customers", "field": "card_number", "purpose": "marketing_email"}}});
    let (status, v) = admin.post("/v1/redact", bad_purpose).await;
    assert!(status == 403 || status == 422 || status == 400, "{status} {v}");
}

/// Keyed operators are audited (operator and entity type, never a value), hash the normal
/// form with the whole HMAC, and take a key per dataset: releases under two key ids do not join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_redaction_is_audited_normalized_and_keyed_per_dataset() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let agent = admin.principal("agent", &["support_agent"]).await;
    let mut agent = server.client(&agent).await;
    let ops = json!({"EMAIL_ADDRESS": {"type": "hash"}, "US_SSN": {"type": "encrypt"}});
    // a role that may scan and mask is no oracle of the server's key: hashing guesses (every
    // SSN, a request at a time) would reverse a dataset the server hashed
    for keyed in [
        json!({"text": "ssn 078-05-1123", "operators": {"US_SSN": {"type": "hash"}}}),
        json!({"text": "ssn 078-05-1123", "default_operator": {"type": "encrypt"}}),
        json!({"text": "ssn 078-05-1123", "operators": {"US_SSN": {"type": "hash"}}, "key_id": "r1"}),
    ] {
        let (status, v) = agent.post("/v1/redact", keyed).await;
        assert_eq!((status, v["error"]["code"].as_str()), (403, Some("not_allowed")), "{v}");
    }
    let (status, v) = agent
        .post(
            "/v1/redact",
            json!({"text": "ssn 078-05-1123", "operators": {"US_SSN": {"type": "mask"}}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, denied) = admin.get("/v1/audit/events?action=pii.redact.key").await;
    assert!(
        denied["events"]
            .as_array()
            .is_some_and(|e| e.len() == 3 && e.iter().all(|e| e["entry"]["decision"] == "deny")),
        "{denied}"
    );
    let mut redact = async |text: &str, key_id: Option<&str>| {
        let mut body = json!({"text": text, "operators": ops});
        if let Some(id) = key_id {
            body["key_id"] = json!(id);
        }
        let (status, v) = admin.post("/v1/redact", body).await;
        assert_eq!(status, 200, "{v}");
        let out = v["text"].as_str().unwrap().to_owned();
        let hash = out
            .split("<EMAIL_ADDRESS:")
            .nth(1)
            .unwrap()
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        (out, hash)
    };
    let (out, plain) = redact("mail bob@example.com, ssn 078-05-1123.", None).await;
    assert!(!out.contains("078-05-1123") && !out.contains("bob@"), "{out}");
    assert_eq!(plain.len(), 64, "the whole HMAC-SHA256: {out}");
    let (_, same) = redact("mail  Bob@Example.COM  today", None).await;
    assert_eq!(same, plain, "emails are hashed in their normal form");
    let (_, a) = redact("mail bob@example.com", Some("release_2026_q1")).await;
    let (_, a2) = redact("mail bob@example.com", Some("release_2026_q1")).await;
    let (_, b) = redact("mail bob@example.com", Some("release_2026_q2")).await;
    assert_eq!(a, a2, "one dataset joins with itself");
    assert!(a != b && a != plain, "two datasets do not join");
    let (status, v) = admin
        .post(
            "/v1/redact",
            json!({"text": "mail bob@example.com", "operators": ops, "key_id": "Release 1"}),
        )
        .await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("key_id")), "{v}");

    let (_, page) = admin.get("/v1/audit/events?action=pii.redact.keyed").await;
    let entries: Vec<Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].clone())
        .collect();
    assert_eq!(entries.len(), 5, "{page}");
    assert_eq!(entries[0]["fields"], json!(["encrypt:US_SSN", "hash:EMAIL_ADDRESS"]));
    assert_eq!(
        entries[2]["fields"],
        json!(["hash:EMAIL_ADDRESS", "key_id:release_2026_q1"])
    );
    let (_, all) = admin.get("/v1/audit/events?limit=1000").await;
    assert!(
        !all.to_string().to_lowercase().contains("bob@example.com"),
        "no value in the log"
    );
}

#[test]
fn github_annotations_and_a_cap_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let emails = "ann@example.com\nbob@example.com\ncid@example.com\n";
    std::fs::write(dir.path().join("a,b:c.txt"), emails).unwrap();
    let (code, out, err) = scan(
        dir.path(),
        &[
            "a,b:c.txt",
            "--format",
            "github",
            "--max-per-file",
            "2",
            "--fail-on",
            "any",
        ],
    );
    assert_eq!(code, 1, "a finding not shown still fails the run: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!(
                "::error file=a%2Cb%3Ac.txt,line={},col=1,title=Personal data%3A EMAIL_ADDRESS::EMAIL_ADDRESS",
                i + 1
            )),
            "{line}"
        );
        assert!(!line.contains("example.com"), "no value in an annotation: {line}");
    }
    assert!(
        err.contains("a,b:c.txt: 1 more finding(s) not shown (--max-per-file)"),
        "{err}"
    );
    assert!(err.contains("3 finding(s)"), "every finding counted: {err}");
}

#[test]
fn a_baseline_passes_over_known_findings_and_holds_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fixtures.txt");
    std::fs::write(&file, "ann@example.com\nbob@example.com\n").unwrap();
    let (code, _, err) = scan(dir.path(), &["fixtures.txt", "--write-baseline", "known.json"]);
    assert_eq!(code, 0, "{err}");
    let baseline = std::fs::read_to_string(dir.path().join("known.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&baseline).unwrap();
    assert_eq!(parsed["fingerprints"].as_array().map(Vec::len), Some(2), "{baseline}");
    assert!(
        !baseline.contains("example") && !baseline.contains("fixtures"),
        "{baseline}"
    );

    // Nothing new: the gate passes, nothing written.
    let gate = [
        "fixtures.txt",
        "--format",
        "json",
        "--baseline",
        "known.json",
        "--fail-on",
        "any",
    ];
    let (code, out, err) = scan(dir.path(), &gate);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("2 known finding(s) passed over (--baseline)"), "{err}");
    // The file named as `./fixtures.txt`, `sub/../fixtures.txt` or by its absolute path is
    // the same file.
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let absolute = file.display().to_string();
    for name in ["./fixtures.txt", "sub/../fixtures.txt", absolute.as_str()] {
        let mut named = gate;
        named[0] = name;
        let (code, out, err) = scan(dir.path(), &named);
        assert_eq!((code, out.as_str()), (0, ""), "{name}: {err}");
    }
    // Run from elsewhere, it knows none: a note says why.
    let mut elsewhere = gate;
    let baseline = dir.path().join("known.json").display().to_string();
    elsewhere[0] = "../fixtures.txt";
    elsewhere[4] = &baseline;
    let (code, _, err) = scan(&dir.path().join("sub"), &elsewhere);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("matched none of these findings"), "{err}");
    // Entries that are no fingerprints are refused, and not echoed.
    std::fs::write(
        dir.path().join("odd.json"),
        r#"{"version":1,"fingerprints":["zz","quagga77@example.org"]}"#,
    )
    .unwrap();
    let (code, _, err) = scan(dir.path(), &["fixtures.txt", "--baseline", "odd.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("2 of its 2 fingerprint(s) are not fingerprints"), "{err}");
    assert!(!err.contains("quagga"), "{err}");
    // a data file given as the baseline by mistake: its keys and values are not echoed
    for data in [
        r#"{"bob@example.com":{"a":1}}"#,
        r#"["536-90-4399"]"#,
        "4111111111111111",
        r#"{"version":1,"fingerprints":[5500000000000004]}"#,
    ] {
        std::fs::write(dir.path().join("data.json"), data).unwrap();
        let (code, _, err) = scan(dir.path(), &["fixtures.txt", "--baseline", "data.json"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("not a baseline"), "{err}");
        for value in ["bob@", "536-90", "4111", "5500"] {
            assert!(!err.contains(value), "{err}");
        }
    }

    // One more: only it is reported, and it fails the gate.
    std::fs::write(&file, "ann@example.com\nbob@example.com\ncid@example.com\n").unwrap();
    let (code, out, err) = scan(dir.path(), &gate);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("\"line\":3"), "{out}");

    // A baseline that is not one is an error naming the file.
    std::fs::write(dir.path().join("bad.json"), "[]").unwrap();
    let (code, _, err) = scan(dir.path(), &["fixtures.txt", "--baseline", "bad.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.json") && err.contains("not a baseline"), "{err}");
}
