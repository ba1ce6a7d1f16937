//! `custodia fides export|import`: the registry as fideslang manifests and back.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use custodia_core::DataDir;
use custodia_registry::Registry;

#[derive(Subcommand)]
pub(crate) enum FidesCommand {
    /// Write the registry as fideslang YAML manifests (an organization, a dataset per
    /// collection, the vault as a system with a privacy declaration per purpose, a system per
    /// recipient). Every purpose needs a `data_use`.
    ///
    /// Example: `custodia fides export custodia-data/registry.toml --out fides/` then
    /// `fides push fides/`.
    // Written out: clap's own usage in an error shows a positional that was given as
    // required (`<REGISTRY>`), and this one is optional.
    #[command(override_usage = "custodia fides export [OPTIONS] --out <OUT> [REGISTRY]")]
    Export {
        /// The registry file (default: custodia-data/registry.toml).
        registry: Option<PathBuf>,
        /// The directory to write the manifests into (created if missing). Only an earlier
        /// export's own files are replaced or removed; a directory holding anything else
        /// that `fides` would read is refused.
        #[arg(long)]
        out: PathBuf,
    },
    /// Turn fideslang manifests into a registry file, reporting what was inferred and what
    /// has no equivalent. Errors name the file and line.
    ///
    /// Example: `custodia fides import fides/ --out registry.toml --country GB
    /// --supervisory-authority "Information Commissioner's Office"`.
    Import {
        /// Manifest files, or directories whose `.yml`/`.yaml` files are read.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The registry file to write (refused if it exists).
        #[arg(long)]
        out: PathBuf,
        /// The organization's country (ISO 3166-1 alpha-2), when the manifests are not a
        /// Custodia export: fideslang has no country.
        #[arg(long)]
        country: Option<String>,
        /// The organization's lead supervisory authority, when the manifests are not a
        /// Custodia export.
        #[arg(long)]
        supervisory_authority: Option<String>,
    },
}

pub(crate) fn run(command: FidesCommand) -> ExitCode {
    let result = match command {
        FidesCommand::Export { registry, out } => export(registry.as_deref(), &out),
        FidesCommand::Import {
            inputs,
            out,
            country,
            supervisory_authority,
        } => import(
            &inputs,
            &out,
            custodia_fides::ImportOptions {
                country,
                supervisory_authority,
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn export(registry: Option<&Path>, out: &Path) -> Result<(), String> {
    let path = registry.map_or_else(|| DataDir::new("custodia-data").registry_path(), Path::to_path_buf);
    let registry = Registry::load(&path).map_err(|e| e.to_string())?;
    let manifests = custodia_fides::export(&registry).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    // The directory is the export: an older export's files (a collection since removed) or
    // other manifests would be read with it by `fides push` or an import. Only files an
    // export wrote (its first line says so) are replaced or removed; anything else, or a
    // symlink, stops the export before a file is touched.
    if let Some(link) = symlink_under(out)? {
        return Err(format!(
            "{}: holds the symlink {}, which `fides` would follow; export into a directory of its own",
            out.display(),
            link.display()
        ));
    }
    let mut stale = Vec::new();
    for entry in manifest_files(out)? {
        let ours = entry.parent() == Some(out)
            && std::fs::symlink_metadata(&entry).is_ok_and(|m| m.file_type().is_file())
            && first_line(&entry).is_some_and(|line| line == custodia_fides::EXPORT_MARK);
        if !ours {
            return Err(format!(
                "{}: holds {}, which no export wrote (or a symlink); export into a directory of its own",
                out.display(),
                entry.display()
            ));
        }
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !manifests.iter().any(|m| m.file == name) {
            stale.push(entry);
        }
    }
    // Every manifest written beside first: a failure leaves the older export whole.
    let mut written = Vec::new();
    for m in &manifests {
        match write_beside(out, &m.text) {
            Ok(tmp) => written.push((tmp, out.join(&m.file))),
            Err(e) => {
                for (tmp, _) in &written {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(e);
            }
        }
    }
    for (tmp, path) in &written {
        std::fs::rename(tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    for file in &stale {
        std::fs::remove_file(file).map_err(|e| format!("{}: {e}", file.display()))?;
        eprintln!("removed {} (from an older export)", file.display());
    }
    out!(
        "{}: {} manifests ({} datasets, {} purposes as privacy declarations, {} recipients); not exported (no Fides equivalent): roles, operators, training, incidents, jurisdictions, policy context, context signers",
        out.display(),
        manifests.len(),
        registry.collections.len(),
        registry.purposes.len(),
        registry.recipients.len()
    );
    Ok(())
}

/// The first line of a file (at most 4 KiB read), if it can be read.
fn first_line(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path).ok()?.take(4096).read_to_end(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head);
    Some(text.lines().next().unwrap_or_default().to_owned())
}

/// Writes `text` to a new file of a fresh name in `dir` (created, never opened if there:
/// no one's file is replaced, no symlink written through), synced; renamed into place after.
fn write_beside(dir: &Path, text: &str) -> Result<PathBuf, String> {
    use std::io::Write;
    for _ in 0..8 {
        let mut random = [0u8; 8];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| "no randomness for a file name".to_owned())?;
        let tmp = dir.join(format!(".custodia-export-{}.tmp", hex::encode(random)));
        let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", tmp.display())),
        };
        return match file.write_all(text.as_bytes()).and_then(|()| file.sync_all()) {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(format!("{}: {e}", tmp.display()))
            }
        };
    }
    Err(format!("{}: no fresh file name", dir.display()))
}

/// The first symlink under `dir` (at any depth), if any: `fides` follows them.
fn symlink_under(dir: &Path) -> Result<Option<PathBuf>, String> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let entry = entry.map_err(|e| format!("{}: {e}", d.display()))?;
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            if kind.is_symlink() {
                return Ok(Some(entry.path()));
            }
            if kind.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(None)
}

/// The `.yml`/`.yaml` files under `dir`, in every subdirectory (as `fides` reads them), sorted.
/// A symlinked subdirectory is not entered: a link to a parent would never end.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let entry = entry.map_err(|e| format!("{}: {e}", d.display()))?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn import(inputs: &[PathBuf], out: &Path, options: custodia_fides::ImportOptions) -> Result<(), String> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let found = manifest_files(input)?;
            if found.is_empty() {
                return Err(format!("{}: no .yml or .yaml files", input.display()));
            }
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    let mut sources = Vec::new();
    let mut total = 0u64;
    for file in &files {
        let size = std::fs::metadata(file)
            .map_err(|e| format!("{}: {e}", file.display()))?
            .len();
        total = total.saturating_add(size);
        if total > custodia_fides::MAX_MANIFEST_BYTES as u64 {
            return Err(format!(
                "the manifests together are larger than {} MiB (the bound of one file and of them all): import fewer at a time",
                custodia_fides::MAX_MANIFEST_BYTES >> 20
            ));
        }
        if size > custodia_fides::MAX_MANIFEST_BYTES as u64 || !std::fs::metadata(file).is_ok_and(|m| m.is_file()) {
            return Err(format!(
                "{}: not a manifest file of at most {} MiB",
                file.display(),
                custodia_fides::MAX_MANIFEST_BYTES >> 20
            ));
        }
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", file.display()))?;
        sources.push(custodia_fides::Source {
            name: file.display().to_string(),
            text,
        });
    }
    let imported = custodia_fides::import(&sources, &options)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
    // Created, never replaced: not an existing file, nor through a symlink left there.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{}: exists; give another --out (nothing is overwritten)", out.display())
            }
            _ => format!("{}: {e}", out.display()),
        })?;
    std::io::Write::write_all(&mut file, imported.registry_toml.as_bytes())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    for line in &imported.report {
        eprintln!("note: {line}");
    }
    out!(
        "{}: registry written from {} manifest files ({} notes above; check it with `custodia check {}`)",
        out.display(),
        files.len(),
        imported.report.len(),
        out.display()
    );
    Ok(())
}
