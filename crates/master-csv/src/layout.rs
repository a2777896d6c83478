//! Where calltype's objects live in the bucket, under one configurable prefix.

/// Object keys under the output prefix (default `calltype/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

impl Default for Layout {
    fn default() -> Self {
        Self::new("calltype/")
    }
}

impl Layout {
    /// `prefix` gets a trailing `/` if it lacks one; an empty prefix puts everything at the root.
    pub fn new(prefix: &str) -> Self {
        let mut prefix = prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { prefix }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The master CSV of one contact date (`YYYY-MM-DD`).
    pub fn master(&self, date: &str) -> String {
        format!("{}transcripts/date={date}/transcripts.csv", self.prefix)
    }

    /// The prefix under which all master CSVs live.
    pub fn masters_prefix(&self) -> String {
        format!("{}transcripts/", self.prefix)
    }

    /// The touched-partition record of one contact date: ingest writes it after every append
    /// to the date's master, and classify removes it once the date's watermark has caught up
    /// (see [`crate::touched`]).
    pub fn touched(&self, date: &str) -> String {
        format!("{}date={date}.json", self.touched_prefix())
    }

    /// The prefix under which the touched-partition records live.
    pub fn touched_prefix(&self) -> String {
        format!("{}state/touched/", self.prefix)
    }

    /// The contact date of a touched-partition record's key, if `key` is one.
    pub fn touched_date<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(&self.touched_prefix())?
            .strip_prefix("date=")?
            .strip_suffix(".json")
    }

    /// The quarantine note for a source object that could not be ingested.
    pub fn quarantine_note(&self, source_key: &str) -> String {
        format!("{}quarantine/{source_key}.reason.json", self.prefix)
    }

    /// The quarantined copy of a source object's bytes.
    pub fn quarantine_copy(&self, source_key: &str) -> String {
        format!("{}quarantine/{source_key}", self.prefix)
    }

    /// True when `key` is one of our own outputs (never an input).
    pub fn is_ours(&self, key: &str) -> bool {
        !self.prefix.is_empty() && key.starts_with(&self.prefix)
    }
}
