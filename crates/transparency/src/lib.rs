//! What Custodia tells people, generated from the registry so that it cannot drift from
//! what the system does: the privacy notice (GDPR Art. 13/14, CCPA §1798.100) as data
//! ([`Notice`]), in words ([`NoticeText`]), as HTML and Markdown; the record of processing
//! activities (GDPR Art. 30(1), [`Ropa`]) as JSON and CSV; and the preference center's pages.
//! The words live in one file per language ([`Locale`]). No I/O besides reading a locale
//! file, no vault: the server and the CLI hand in what to show.

pub mod html;
pub mod locale;
pub mod notice;
pub mod ropa;
pub mod view;

pub use locale::{Locale, LocaleError, Strings, fill};
pub use notice::Notice;
pub use ropa::Ropa;
pub use view::NoticeText;
