//! `custodia notice` and `custodia ropa`: the privacy notice and the record of processing
//! generated offline from a registry file (the same as `GET /privacy-notice` and
//! `GET /v1/ropa` of a server running on it), and the words of the registry's language.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use custodia_core::DataDir;
use custodia_registry::{Date, Registry};
use custodia_transparency::html::notice_page;
use custodia_transparency::{Locale, Notice, NoticeText, Ropa};

/// `custodia notice`.
#[derive(Debug, Args)]
pub(crate) struct NoticeArgs {
    /// The registry file (default: custodia-data/registry.toml).
    file: Option<PathBuf>,
    /// `markdown` for your website, `html` (the page `/privacy-notice` serves) or `json`.
    #[arg(long, value_enum, default_value = "markdown")]
    format: NoticeFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The day to give as "Last updated" (`YYYY-MM-DD`), e.g. the day you publish this copy.
    /// Without a server there is no record of when a version was first shown, so the notice
    /// says no date unless given one (a server's notice says the day it first showed it).
    #[arg(long, value_parser = parse_date)]
    last_updated: Option<Date>,
}

fn parse_date(text: &str) -> Result<Date, String> {
    Date::parse(text).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NoticeFormat {
    Markdown,
    Html,
    Json,
}

/// `custodia ropa`.
#[derive(Debug, Args)]
pub(crate) struct RopaArgs {
    /// The registry file (default: custodia-data/registry.toml).
    file: Option<PathBuf>,
    /// `csv` (one row per processing activity) or `json`.
    #[arg(long, value_enum, default_value = "csv")]
    format: RopaFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RopaFormat {
    Csv,
    Json,
}

/// The registry at `file` (default: custodia-data's) and the words of its language, from
/// `locales/` beside it.
pub(crate) fn load(file: Option<&Path>) -> anyhow::Result<(Registry, Locale)> {
    let path = file.map_or_else(|| DataDir::new("custodia-data").registry_path(), Path::to_path_buf);
    let registry = Registry::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let locale = locale_beside(&path, &registry)?;
    Ok((registry, locale))
}

/// The words of `registry`'s language, from `locales/` in the directory of the registry
/// file `path`.
pub(crate) fn locale_beside(path: &Path, registry: &Registry) -> anyhow::Result<Locale> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    Ok(Locale::load(dir, &registry.organization.language)?)
}

fn write(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => std::fs::write(path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display())),
        None => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            Ok(())
        }
    }
}

pub(crate) fn notice(args: &NoticeArgs) -> anyhow::Result<()> {
    let (registry, locale) = load(args.file.as_deref())?;
    let mut notice = Notice::build(&registry, &locale);
    if let Some(date) = args.last_updated {
        notice = notice.updated_on(date);
    }
    let text = match args.format {
        NoticeFormat::Json => format!("{}\n", serde_json::to_string_pretty(&notice)?),
        NoticeFormat::Markdown => {
            NoticeText::new(&notice, &locale.strings).to_markdown(&locale.strings.notice.markdown_note)
        }
        NoticeFormat::Html => notice_page(&NoticeText::new(&notice, &locale.strings))?,
    };
    write(args.out.as_deref(), &text)
}

pub(crate) fn ropa(args: &RopaArgs) -> anyhow::Result<()> {
    let (registry, locale) = load(args.file.as_deref())?;
    let version = Notice::build(&registry, &locale).version;
    let record = Ropa::build(&registry, &version);
    let text = match args.format {
        RopaFormat::Csv => record.to_csv(),
        RopaFormat::Json => format!("{}\n", serde_json::to_string_pretty(&record)?),
    };
    write(args.out.as_deref(), &text)
}
