//! Every version of the privacy notice that was shown (append-only): consents name the
//! version the subject saw, and what it said stays answerable.

use crate::sql::{DbRow, Stmt};
use crate::{ReadWrite, StoreError};

super::repository!(
    /// Published notice versions.
    Notices
);

/// One version of the notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    pub version: String,
    pub language: String,
    /// When this server first showed it (Unix milliseconds).
    pub published_at: i64,
    /// The notice as data (JSON).
    pub notice: String,
    /// The page as people read it.
    pub html: String,
}

fn notice_row(r: &DbRow) -> Result<NoticeRow, StoreError> {
    Ok(NoticeRow {
        version: r.text("version")?,
        language: r.text("language")?,
        published_at: r.int("published_at")?,
        notice: r.text("notice")?,
        html: r.text("html")?,
    })
}

impl<A> Notices<'_, A> {
    /// The version called `version`.
    pub async fn get(&mut self, version: &str) -> Result<Option<NoticeRow>, StoreError> {
        let stmt = Stmt::new("SELECT version, language, published_at, notice, html FROM notices WHERE version = $1")
            .bind(version);
        self.conn
            .fetch_optional(stmt)
            .await?
            .as_ref()
            .map(notice_row)
            .transpose()
    }

    /// Every version, first published first, without its texts (`notice` and `html` empty).
    pub async fn list(&mut self) -> Result<Vec<NoticeRow>, StoreError> {
        let stmt = Stmt::new(
            "SELECT version, language, published_at, '' AS notice, '' AS html FROM notices ORDER BY published_at, version",
        );
        self.conn.fetch_all(stmt).await?.iter().map(notice_row).collect()
    }
}

impl Notices<'_, ReadWrite> {
    /// Records a version unless it is known; returns whether this call recorded it.
    pub async fn publish(&mut self, row: &NoticeRow) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            "INSERT INTO notices (version, language, published_at, notice, html) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(row.version.as_str())
        .bind(row.language.as_str())
        .bind(row.published_at)
        .bind(row.notice.as_str())
        .bind(row.html.as_str());
        Ok(self.conn.execute(stmt).await? == 1)
    }
}
