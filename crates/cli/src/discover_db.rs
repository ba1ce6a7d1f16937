//! `custodia scan --db URL`: sample every table of a SQLite file or PostgreSQL database,
//! classify each column, and print registry entries for what holds personal data.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, bail};
use custodia_pii::Scanner;
use custodia_pii::discover::{ColumnReport, category_for, classify_column, registry_suggestion};
use custodia_pii::report::OutputFormat;
use sqlx::{Connection, Row};

use crate::progress::Bar;

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

type Table = (String, Vec<String>, Vec<Vec<Option<String>>>);

/// Each row's columns as text (the queries cast every column to text; NULL stays None).
fn text_values<R>(rows: &[R], columns: usize) -> Vec<Vec<Option<String>>>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|r| {
            (0..columns)
                .map(|i| r.try_get::<Option<String>, _>(i).ok().flatten())
                .collect()
        })
        .collect()
}

async fn sample_sqlite(path: &str, n: u32, bar: &Bar) -> anyhow::Result<Vec<Table>> {
    if !std::path::Path::new(path).is_file() {
        bail!("{path}: no such SQLite file");
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .with_context(|| format!("opening {path}"))?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .context("listing tables (is it a SQLite database?)")?;
    bar.set_total(u64::try_from(tables.len()).unwrap_or(0));
    let mut out = Vec::new();
    for t in tables {
        bar.inc(1);
        let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({})", quote(&t))))
            .fetch_all(&mut conn)
            .await?
            .iter()
            .filter_map(|r| r.try_get::<String, _>("name").ok())
            .collect();
        if cols.is_empty() {
            continue;
        }
        let select: Vec<String> = cols.iter().map(|c| format!("CAST({} AS TEXT)", quote(c))).collect();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM {} LIMIT {n}",
            select.join(", "),
            quote(&t)
        )))
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("sampling {t}"))?;
        let values = text_values(&rows, cols.len());
        out.push((t, cols, values));
    }
    Ok(out)
}

async fn sample_postgres(url: &str, n: u32, bar: &Bar) -> anyhow::Result<Vec<Table>> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
         ORDER BY table_schema, table_name",
    )
    .fetch_all(&mut conn)
    .await
    .context("listing tables")?;
    bar.set_total(u64::try_from(tables.len()).unwrap_or(0));
    let mut out = Vec::new();
    for (schema, t) in tables {
        bar.inc(1);
        let cols: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        )
        .bind(&schema)
        .bind(&t)
        .fetch_all(&mut conn)
        .await?;
        if cols.is_empty() {
            continue;
        }
        let select: Vec<String> = cols.iter().map(|c| format!("{}::text", quote(c))).collect();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM {}.{} LIMIT {n}",
            select.join(", "),
            quote(&schema),
            quote(&t)
        )))
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("sampling {schema}.{t}"))?;
        let values = text_values(&rows, cols.len());
        let name = if schema == "public" { t } else { format!("{schema}.{t}") };
        out.push((name, cols, values));
    }
    Ok(out)
}

pub async fn run(
    scanner: &Scanner,
    url: &str,
    sample: u32,
    format: OutputFormat,
    bar: &Bar,
) -> anyhow::Result<ExitCode> {
    if sample == 0 {
        bail!("--sample must be at least 1");
    }
    let tables = if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        sample_sqlite(path, sample, bar).await?
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        sample_postgres(url, sample, bar).await?
    } else {
        bail!("--db takes sqlite:PATH or a postgres:// URL");
    };
    bar.finish();
    let mut reports: Vec<ColumnReport> = Vec::new();
    for (t, (table, cols, rows)) in tables.iter().enumerate() {
        for (i, col) in cols.iter().enumerate() {
            let values: Vec<Option<String>> = rows.iter().map(|r| r.get(i).cloned().flatten()).collect();
            let mut report = classify_column(scanner, table, col, &values);
            // a name that holds personal data (a table named by an address) is printed by
            // its place, as a CSV header is
            if scanner.names_personal_data(table.as_bytes()) {
                report.table = format!("table_{}", t + 1);
            }
            if scanner.names_personal_data(col.as_bytes()) {
                report.column = format!("column_{}", i + 1);
            }
            reports.push(report);
        }
    }
    // the source as given, without a password
    let source = match url.find('@') {
        Some(at) if url.contains("://") => format!("{}://…{}", url.split("://").next().unwrap_or(""), &url[at..]),
        _ => url.to_owned(),
    };
    // written at once; a closed pipe (`| head`) is not an error
    let mut text = String::new();
    match format {
        OutputFormat::Json => {
            for r in &reports {
                let _ = writeln!(text, "{}", serde_json::to_string(r)?);
            }
        }
        _ => {
            let _ = writeln!(
                text,
                "{} table(s), {} column(s) sampled (up to {sample} rows each) from {source}",
                tables.len(),
                reports.len()
            );
            for r in &reports {
                let what = match &r.class {
                    Some(c) => format!(
                        "{c} ({:.0}% of {} values){}",
                        r.share * 100.0,
                        r.non_empty,
                        if category_for(c, &r.column).is_none() {
                            ", not personal by itself"
                        } else {
                            ""
                        }
                    ),
                    None if r.entities.is_empty() => "-".to_owned(),
                    None => format!("mixed: {:?}", r.entities),
                };
                let _ = writeln!(text, "  {:<40} {what}", format!("{}.{}", r.table, r.column));
            }
            let _ = writeln!(text,);
            let _ = write!(text, "{}", registry_suggestion(&source, &reports));
        }
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}
