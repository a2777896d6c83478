//! The master-CSV row: its columns, and how a [`Contact`] becomes one.

use contact_lens::{Contact, Participants};
use serde::{Deserialize, Serialize};

/// The master CSV's columns, in order. This list is the contract with Athena: columns are
/// only ever added at the end.
pub const COLUMNS: &[&str] = &[
    "contact_id",
    "contact_date",
    "channel",
    "redacted",
    "language",
    "version",
    "duration_ms",
    "turns",
    "sentiment_customer",
    "sentiment_agent",
    "categories",
    "summary",
    "transcript",
    "source_key",
    "instance_id",
    "ingested_at",
];

/// Index of `contact_id` in [`COLUMNS`].
pub const CONTACT_ID_COL: usize = 0;
/// Index of `redacted` in [`COLUMNS`].
pub const REDACTED_COL: usize = 3;
/// Index of `source_key` in [`COLUMNS`].
pub const SOURCE_KEY_COL: usize = 13;

/// Separator of the Contact Lens categories inside the `categories` column.
pub const CATEGORY_SEPARATOR: &str = "|";

/// One call in the master CSV. Field order is [`COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub contact_id: String,
    /// `YYYY-MM-DD`, also the partition.
    pub contact_date: String,
    /// `VOICE` or `CHAT`.
    pub channel: String,
    pub redacted: bool,
    pub language: String,
    pub version: String,
    pub duration_ms: Option<u64>,
    pub turns: usize,
    pub sentiment_customer: Option<f64>,
    pub sentiment_agent: Option<f64>,
    /// Contact Lens matched categories joined by [`CATEGORY_SEPARATOR`].
    pub categories: String,
    pub summary: String,
    pub transcript: String,
    pub source_key: String,
    pub instance_id: String,
    /// RFC 3339 UTC time of ingestion.
    pub ingested_at: String,
}

/// Why a contact cannot become a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("no contact date in the key or the file")]
    NoContactDate,
}

impl Row {
    /// Builds the row for `contact`, read from `source_key`, ingested at `ingested_at`.
    pub fn from_contact(
        contact: &Contact,
        source_key: &str,
        who: Participants,
        ingested_at: &str,
    ) -> Result<Row, RowError> {
        let date = contact.contact_date.ok_or(RowError::NoContactDate)?;
        Ok(Row {
            contact_id: contact.contact_id.clone(),
            contact_date: date.format("%Y-%m-%d").to_string(),
            channel: contact.channel.to_string(),
            redacted: contact.redacted,
            language: contact.language.clone().unwrap_or_default(),
            version: contact.version.clone(),
            duration_ms: contact.duration_ms,
            turns: contact.turns.len(),
            sentiment_customer: contact.sentiment_customer,
            sentiment_agent: contact.sentiment_agent,
            categories: contact.categories.join(CATEGORY_SEPARATOR),
            summary: contact.summary.clone().unwrap_or_default(),
            transcript: contact.transcript(who),
            source_key: source_key.to_string(),
            instance_id: contact.instance_id.clone().unwrap_or_default(),
            ingested_at: ingested_at.to_string(),
        })
    }

    /// The identity a master CSV holds at most once: one row per contact and copy.
    pub fn identity(&self) -> Identity {
        Identity {
            contact_id: self.contact_id.clone(),
            redacted: self.redacted,
        }
    }
}

/// A contact and which copy of its analysis (raw or redacted) a row came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub contact_id: String,
    pub redacted: bool,
}
