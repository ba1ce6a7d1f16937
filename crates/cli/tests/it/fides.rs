//! `custodia fides export|import` as a user runs them: files, directories, refusals.

use crate::support::custodia;

/// `custodia fides VERB INPUT --out OUT [EXTRA...]`.
fn fides(verb: &str, input: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["fides", verb, input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = custodia().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn export_then_import_as_files_with_every_refusal_clear() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    std::fs::write(&registry, custodia_registry::EXAMPLE_REGISTRY).unwrap();
    let out = dir.path().join("fides");
    let (ok, stdout, stderr) = fides("export", &registry, &out, &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("3 manifests"), "{stdout}");
    assert!(out.join("dataset_customers.yml").is_file());

    // A collection that went away takes its dataset with it on the next export.
    let older = format!("{}\ndataset: []\n", custodia_fides::EXPORT_MARK);
    std::fs::write(out.join("dataset_gone.yml"), older).unwrap();
    let (ok, _, stderr) = fides("export", &registry, &out, &[]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("dataset_gone.yml") && !out.join("dataset_gone.yml").exists(),
        "{stderr}"
    );
    // Someone else's manifests in the directory, even under an export's names, or a symlink
    // where an export writes: refused, nothing removed, replaced or written through.
    let exported = std::fs::read(out.join("system.yml")).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    for (name, write) in [
        ("theirs.yml", None),
        ("dataset_orders.yml", None),
        ("system.yml", None),
        ("system.yml", Some(&victim)),
    ] {
        let path = out.join(name);
        let kept = if path.exists() {
            Some(std::fs::read(&path).unwrap())
        } else {
            None
        };
        let _ = std::fs::remove_file(&path);
        match write {
            None => std::fs::write(&path, "system: []\n").unwrap(),
            Some(target) => std::os::unix::fs::symlink(target, &path).unwrap(),
        }
        let (ok, _, stderr) = fides("export", &registry, &out, &[]);
        let why = if write.is_some() {
            "holds the symlink"
        } else {
            "which no export wrote"
        };
        assert!(!ok && stderr.contains(why), "{name}: {stderr}");
        assert!(path.exists(), "{name}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        std::fs::remove_file(&path).unwrap();
        if let Some(kept) = kept {
            std::fs::write(&path, kept).unwrap();
        }
    }
    assert_eq!(std::fs::read(out.join("system.yml")).unwrap(), exported);
    // A symlinked subdirectory (fides would read what it holds) is refused too.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("rogue.yml"), "system: []\n").unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("sub")).unwrap();
    let (ok, _, stderr) = fides("export", &registry, &out, &[]);
    assert!(!ok && stderr.contains("holds the symlink"), "{stderr}");
    std::fs::remove_file(out.join("sub")).unwrap();
    // Nothing of the export's own is left behind beside the manifests.
    let (ok, _, stderr) = fides("export", &registry, &out, &[]);
    assert!(ok, "{stderr}");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".yml")), "{names:?}");
    assert!(
        std::fs::read_to_string(out.join("system.yml"))
            .unwrap()
            .starts_with(custodia_fides::EXPORT_MARK)
    );

    // A link back to the directory is not walked into (it would never end).
    std::os::unix::fs::symlink(&out, out.join("loop")).unwrap();
    let back = dir.path().join("back.toml");
    let (ok, stdout, stderr) = fides("import", &out, &back, &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("registry written from 3 manifest files"), "{stdout}");
    assert!(stderr.contains("note: roles: none"), "{stderr}");
    let (ok, stdout, stderr) = run(&["check", back.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("6 purposes, 4 recipients"), "{stdout}");

    // Never overwritten: an existing file, nor a file behind a dangling symlink.
    let before = std::fs::read(&back).unwrap();
    let (ok, _, stderr) = fides("import", &out, &back, &[]);
    assert!(!ok && stderr.contains("exists"), "{stderr}");
    assert_eq!(std::fs::read(&back).unwrap(), before);
    let link = dir.path().join("link.toml");
    let target = dir.path().join("elsewhere.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (ok, _, stderr) = fides("import", &out, &link, &[]);
    assert!(!ok && stderr.contains("exists"), "{stderr}");
    assert!(!target.exists());

    // A bad manifest: its file and line, exit non-zero, nothing written.
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "system:\n- fides_key: s\n  privacy_declarations:\n  - name: p\n    data_categories: [user.name]\n    legal_basis_for_processing: Whim\n").unwrap();
    let never = dir.path().join("never.toml");
    let (ok, _, stderr) = fides(
        "import",
        &bad,
        &never,
        &["--country", "GB", "--supervisory-authority", "ICO"],
    );
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("bad.yml:6:") && stderr.contains("`Whim`"), "{stderr}");
    assert!(!never.exists());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, _, stderr) = fides("import", &empty, &never, &[]);
    assert!(!ok && stderr.contains("no .yml or .yaml files"), "{stderr}");
}

#[test]
fn the_export_usage_shows_the_registry_as_optional() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    // Given, with --out missing: clap's usage showed it as required (`<REGISTRY>`).
    let (ok, _, stderr) = run(&["fides", "export", registry.to_str().unwrap()]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("Usage: custodia fides export [OPTIONS] --out <OUT> [REGISTRY]"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = run(&["fides", "export", "--help"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("[REGISTRY]") && !stdout.contains("<REGISTRY>"),
        "{stdout}"
    );
}
