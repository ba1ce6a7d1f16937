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
    Export {
        /// The registry file (default: custodia-data/registry.toml).
        registry: Option<PathBuf>,
        /// The directory to write the manifests into (created if missing; files of the same
        /// names are replaced).
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
    for m in &manifests {
        let file = out.join(&m.file);
        std::fs::write(&file, &m.text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    println!(
        "{}: {} manifests ({} datasets, {} purposes as privacy declarations, {} recipients); not exported (no Fides equivalent): roles, operators, training, incidents, jurisdictions, policy context",
        out.display(),
        manifests.len(),
        registry.collections.len(),
        registry.purposes.len(),
        registry.recipients.len()
    );
    Ok(())
}

fn import(inputs: &[PathBuf], out: &Path, options: custodia_fides::ImportOptions) -> Result<(), String> {
    if out.exists() {
        return Err(format!(
            "{}: exists; give another --out (nothing is overwritten)",
            out.display()
        ));
    }
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| format!("{}: {e}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect();
            if found.is_empty() {
                return Err(format!("{}: no .yml or .yaml files", input.display()));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    let mut sources = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        sources.push(custodia_fides::Source {
            name: file.display().to_string(),
            text,
        });
    }
    let imported = custodia_fides::import(&sources, &options)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
    std::fs::write(out, &imported.registry_toml).map_err(|e| format!("{}: {e}", out.display()))?;
    for line in &imported.report {
        eprintln!("note: {line}");
    }
    println!(
        "{}: registry written from {} manifest files ({} notes above; check it with `custodia check {}`)",
        out.display(),
        files.len(),
        imported.report.len(),
        out.display()
    );
    Ok(())
}
