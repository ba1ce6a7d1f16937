//! The CLI verbs: init, check, serve's first-run initialisation.

use crate::support::{Vault, custodia};

#[test]
fn init_prints_a_token_once_and_refuses_to_run_twice() {
    let vault = Vault::init();
    assert!(vault.token.starts_with("cst_"));
    for file in ["registry.toml", "root.key", "custodia.db"] {
        assert!(vault.path().join(file).exists(), "{file}");
    }
    assert!(
        !vault.path().join("admin-token").exists(),
        "init prints the token; it does not store it"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(vault.path().join("root.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(vault.path()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700, "the data directory is private");
    }
    let again = custodia()
        .args(["init", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));
}

/// Two servers on one SQLite data directory would each trust their own caches (a consent
/// withdrawn through one was ignored by the other): the second refuses to start, naming the
/// first's pid; once the first stops, the directory can be opened again.
#[test]
fn a_second_serve_on_one_data_directory_exits_naming_the_holder() {
    let vault = Vault::init();
    let first = vault.serve();
    let mut second = custodia()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(vault.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A generous deadline: a second server that starts never exits by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second server started on a data directory already in use");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(
        stderr.contains("in use by another custodia process") && stderr.contains(&format!("(pid {})", first.pid())),
        "{stderr}"
    );
    // A tool that opens the vault refuses too, while the server runs; verification opens the
    // database read-only and runs beside it.
    let export = custodia()
        .args(["audit", "export", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(!export.status.success());
    assert!(String::from_utf8_lossy(&export.stderr).contains(&format!("(pid {})", first.pid())));
    let verify = custodia()
        .args(["audit", "verify", "--public-key", &vault.audit_key, "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    first.terminate();
    let again = vault.serve();
    again.terminate();
}

#[test]
fn check_accepts_the_example_and_reports_every_error_with_its_line() {
    let vault = Vault::init();
    let ok = custodia()
        .arg("check")
        .arg(vault.path().join("registry.toml"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        !String::from_utf8_lossy(&ok.stderr).contains("warning"),
        "the example registry draws no warning: {}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let text = std::fs::read_to_string(vault.path().join("registry.toml")).unwrap();

    // A registry as v0.1 wrote them (no explicit write grants, an administrator without
    // grantable roles) is valid, but `check` says what it no longer allows.
    let v01: String = text
        .lines()
        .filter(|l| !l.starts_with("write") && !l.starts_with("delete") && !l.starts_with("grantable_roles"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = vault.path().join("v01.toml");
    std::fs::write(&path, &v01).unwrap();
    let out = custodia().arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: no role may write under any purpose"),
        "{stderr}"
    );
    assert!(
        stderr.contains("role `admin` manages principals but may grant no other role"),
        "{stderr}"
    );
    let bad = text.replacen("type = \"phone\"", "type = \"telephone\"", 1).replacen(
        "legal_basis = \"contract\"",
        "legal_basis = \"contact\"",
        1,
    );
    let path = vault.path().join("bad.toml");
    std::fs::write(&path, &bad).unwrap();
    let out = custodia().arg("check").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in ["telephone", "contact\""] {
        let line = bad.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert!(
            stderr.contains(&format!("bad.toml:{line}:")),
            "no error at line {line} for {needle}: {stderr}"
        );
    }

    let missing = custodia()
        .arg("check")
        .arg(vault.path().join("nope.toml"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

#[test]
fn serve_initialises_a_new_directory_and_says_where_the_token_is() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let server = crate::support::Server::start(&data, None);
    let token_file = data.join("admin-token");
    assert!(token_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = server.client(&token).await;
        let (status, v) = c.get("/v1/principals").await;
        assert_eq!(status, 200, "{v}");
    });
}

#[test]
fn a_wrong_root_key_is_refused_at_start() {
    let vault = Vault::init();
    let out = custodia()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(vault.path())
        .env("CUSTODIA_ROOT_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("root key does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn principal_commands_wrap_the_api() {
    let vault = Vault::init();
    let server = vault.serve();
    let url = format!("http://{}", server.addr);
    let run = |args: &[&str]| {
        custodia()
            .arg("principal")
            .args(args)
            .args(["--url", &url])
            .env("CUSTODIA_TOKEN", &vault.token)
            .output()
            .unwrap()
    };
    let out = run(&["create", "--name", "desk", "--role", "support_agent"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created["api_key"].as_str().unwrap().starts_with("cst_"));
    let id = created["principal_id"].as_str().unwrap().to_owned();

    // The address and the key from the environment alone (like VAULT_ADDR / VAULT_TOKEN):
    // the server is on a free port, so the default address would not reach it.
    let out = custodia()
        .args(["principal", "list", "--output", "json"])
        .env("CUSTODIA_ADDR", &url)
        .env("CUSTODIA_TOKEN", &vault.token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The table (the default, or CUSTODIA_OUTPUT=table) is one line per principal, no key.
    let out = custodia()
        .args(["principal", "list"])
        .env("CUSTODIA_ADDR", &url)
        .env("CUSTODIA_TOKEN", &vault.token)
        .env("CUSTODIA_OUTPUT", "table")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.contains(&id) && table.contains("desk"),
        "{table}"
    );
    assert!(
        !table.contains("cst_") && !table.trim_start().starts_with('{'),
        "{table}"
    );
    let out = custodia()
        .args(["principal", "list", "--output", "yaml"])
        .env("CUSTODIA_ADDR", &url)
        .env("CUSTODIA_TOKEN", &vault.token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown output format is refused");
    // The old name alone is refused, not ignored: ignoring it would send the key to the
    // default address.
    let out = custodia()
        .args(["principal", "list"])
        .env("CUSTODIA_URL", &url)
        .env_remove("CUSTODIA_ADDR")
        .env("CUSTODIA_TOKEN", &vault.token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CUSTODIA_ADDR"));
    assert!(
        list["principals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "desk")
    );

    let out = run(&["create", "--name", "desk", "--role", "support_agent"]);
    assert!(!out.status.success(), "a taken name is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));
    let out = run(&["revoke", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{id}: revoked"));
    let out = custodia()
        .args(["principal", "list", "--url", &url, "--token", "cst_0000000000000000_00"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

/// The database and its WAL files are the owner's alone, also when an older release left them
/// readable by others; a data directory its group or others may write to is refused.
#[cfg(unix)]
#[test]
fn database_files_are_private_and_a_loose_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let vault = Vault::init();
    let db = vault.path().join("custodia.db");
    assert_eq!(mode(&db), 0o600);
    // As v0.1 left it: readable by everyone.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = vault.serve();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = server.client(&vault.token).await;
        let (status, v) = c
            .post(
                "/v1/subjects/s1/records/customers",
                serde_json::json!({"purpose": "order_fulfillment", "fields": {"name": "Ada"}}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    });
    for file in ["custodia.db", "custodia.db-wal", "custodia.db-shm", "lock"] {
        assert_eq!(mode(&vault.path().join(file)), 0o600, "{file}");
    }
    server.terminate();

    std::fs::set_permissions(vault.path(), std::fs::Permissions::from_mode(0o770)).unwrap();
    for args in [&["serve", "--listen", "127.0.0.1:0"][..], &["audit", "export"][..]] {
        let out = custodia()
            .args(args)
            .arg("--data-dir")
            .arg(vault.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains("writable by its group or others (mode 770)"),
            "{stderr}"
        );
    }
    std::fs::set_permissions(vault.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    vault.serve().terminate();
}

/// Any key rotates, the bootstrap administrator's included: the new key is printed once and
/// carries the same rights, the old one stops working at once, and the rotation is audited.
/// Keys may expire; the expiry is listed, and renewed by a rotation from whoever may grant the
/// key's roles, never by the key itself.
#[test]
fn keys_rotate_and_may_expire() {
    let vault = Vault::init();
    let server = vault.serve();
    let url = format!("http://{}", server.addr);
    let run = |token: &str, args: &[&str]| {
        let out = custodia()
            .arg("principal")
            .args(args)
            .args(["--url", &url])
            .env("CUSTODIA_TOKEN", token)
            .output()
            .unwrap();
        let value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (
            out.status.success(),
            value,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The bootstrap key, by its key id.
    let key_id = vault.token.split('_').nth(1).unwrap();
    let (ok, rotated, err) = run(&vault.token, &["rotate", key_id]);
    assert!(ok, "{err}");
    let admin = rotated["api_key"].as_str().unwrap().to_owned();
    assert_ne!(admin, vault.token);
    let (ok, _, err) = run(&vault.token, &["list", "--output", "json"]);
    assert!(!ok && err.contains("401"), "the old key stops working: {err}");
    let (ok, list, err) = run(&admin, &["list", "--output", "json"]);
    assert!(ok, "{err}");
    assert_eq!(list["principals"][0]["principal_id"], rotated["principal_id"]);

    // Another principal's key, by principal id, with an expiry.
    let (ok, created, err) = run(
        &admin,
        &[
            "create",
            "--name",
            "desk",
            "--role",
            "support_agent",
            "--expires-in",
            "90d",
        ],
    );
    assert!(ok, "{err}");
    let (ok, list, _) = run(&admin, &["list", "--output", "json"]);
    assert!(ok);
    let desk = list["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "desk")
        .unwrap()
        .clone();
    assert!(desk["expires_at"].as_str().is_some(), "{desk}");
    let id = created["principal_id"].as_str().unwrap();
    let (ok, desk_rotated, err) = run(&admin, &["rotate", id, "--expires-at", "2099-01-01T00:00:00Z"]);
    assert!(ok, "{err}");
    // Whoever may grant the key's roles renews it: the new key expires when asked.
    let (_, list, _) = run(&admin, &["list", "--output", "json"]);
    let expiry_of = |list: &serde_json::Value, name: &str| {
        list["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["expires_at"]
            .clone()
    };
    assert_eq!(expiry_of(&list, "desk"), "2099-01-01T00:00:00.000Z", "{list}");
    assert_ne!(expiry_of(&list, "desk"), desk["expires_at"]);
    // A key rotating itself never extends its life (refused, naming why); shorter is fine.
    let (ok, km, err) = run(
        &admin,
        &["create", "--name", "km", "--role", "key_manager", "--expires-in", "90d"],
    );
    assert!(ok, "{err}");
    let (km_id, km_key) = (km["principal_id"].as_str().unwrap(), km["api_key"].as_str().unwrap());
    let (_, list, _) = run(&admin, &["list", "--output", "json"]);
    let km_expiry = expiry_of(&list, "km");
    let (ok, _, err) = run(km_key, &["rotate", km_id, "--expires-at", "2099-01-01T00:00:00Z"]);
    assert!(!ok && err.contains("expiry_not_extended"), "{err}");
    let (ok, _, err) = run(km_key, &["rotate", km_id]);
    assert!(ok, "{err}");
    let (_, list, _) = run(&admin, &["list", "--output", "json"]);
    assert_eq!(
        expiry_of(&list, "km"),
        km_expiry,
        "no expiry asked: the key keeps its own"
    );
    let (ok, _, err) = run(created["api_key"].as_str().unwrap(), &["list", "--output", "json"]);
    assert!(!ok && err.contains("401"), "{err}");
    let (ok, _, err) = run(desk_rotated["api_key"].as_str().unwrap(), &["list", "--output", "json"]);
    assert!(
        !ok && err.contains("403"),
        "the new key works, with the desk's rights only: {err}"
    );
    // An expiry in the past is refused; a desk key may not rotate keys.
    let (ok, _, err) = run(
        &admin,
        &[
            "create",
            "--name",
            "late",
            "--role",
            "support_agent",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert!(!ok && err.contains("expiry_in_the_past"), "{err}");
    let (ok, _, err) = run(desk_rotated["api_key"].as_str().unwrap(), &["rotate", id]);
    assert!(!ok && err.contains("403"), "{err}");
    // The table an access review reads says which keys are dead.
    let (ok, _, err) = run(&admin, &["revoke", id]);
    assert!(ok, "{err}");
    let out = custodia()
        .args(["principal", "list", "--url", &url])
        .env("CUSTODIA_TOKEN", &admin)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let desk_line = table.lines().find(|l| l.contains("desk")).unwrap_or_default();
    assert!(desk_line.contains("REVOKED"), "{table}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = server.client(&admin).await;
        let (status, v) = c.get("/v1/audit/events?action=principal.rotate&limit=100").await;
        assert_eq!(status, 200, "{v}");
        let decisions: Vec<&str> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entry"]["decision"].as_str().unwrap())
            .collect();
        assert_eq!(decisions, ["allow", "allow", "allow", "deny"], "{v}");
    });
}

#[test]
fn completions_are_printed_for_each_shell_and_an_unknown_shell_is_refused() {
    for (shell, mark) in [
        ("bash", "_custodia()"),
        ("zsh", "#compdef custodia"),
        ("fish", "complete -c custodia"),
    ] {
        let out = custodia().args(["completions", shell]).output().unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(mark), "{shell}: {script}");
        // Subcommands and their flags are completed.
        assert!(script.contains("serve") && script.contains("metrics-listen"), "{shell}");
    }
    let out = custodia().args(["completions", "tcsh"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcsh"));
}

#[test]
fn a_reader_that_goes_away_is_not_a_crash() {
    // `custodia completions bash | head -0`: the pipe is closed before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    std::fs::write(&registry, custodia_registry::EXAMPLE_REGISTRY).unwrap();
    let fides = dir.path().join("fides");
    for args in [
        vec!["completions", "bash"],
        vec![
            "fides",
            "export",
            registry.to_str().unwrap(),
            "--out",
            fides.to_str().unwrap(),
        ],
        vec!["policies", registry.to_str().unwrap()],
    ] {
        let mut child = custodia()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() != Some(101) && !stderr.contains("panicked"),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

#[test]
fn serve_logs_one_json_object_per_line_with_log_format_json() {
    use std::io::BufRead as _;
    let vault = Vault::init();
    let mut child = custodia()
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(vault.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    // The log, up to the server's own "listening" entry (written just after the line on
    // standard output), then whatever it writes as it stops.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains(r#""message":"listening""#) {
        if stderr.read_line(&mut log).unwrap() == 0 {
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    child.wait().unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains(r#""message":"listening""#)), "{log}");
}

/// The benchmarks README gives figures of run to their end on a vault's own log: their
/// synthetic audit entries are tagged and dated as the vault's are (both stopped with
/// `audit_log_diverged` once untagged or long-unsigned entries were refused).
#[test]
fn the_audit_benchmarks_run_on_a_log_the_vault_accepts() {
    for (args, line) in [
        (
            &["bench-audit-log", "--entries", "300"][..],
            "consistency proof against the whole log",
        ),
        (&["bench", "--crypto-only"][..], "offline verification of"),
    ] {
        let out = custodia().args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(line),
            "{args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
