//! Where calltype's objects live in the bucket, under one configurable prefix: the one place
//! that builds our object keys (ARCHITECTURE.md, "Bucket keys").
//!
//! ```text
//! <prefix>transcripts/date=D/transcripts.csv                     master CSV (ingest appends)
//! <prefix>state/ingest/date=D/{checkpoint,<marker>}              ingest's exactly-once state
//! <prefix>state/touched/date=D.json                              "partition D grew" (ingest → classify)
//! <prefix>state/classify/date=D/watermark.json                   classify's watermark and claim
//! <prefix>state/transform/date=D/part-<from>-<to>/               one batch-transform job's state
//! <prefix>labeled/date=D/part-<from>-<to>.csv                    labeled part of master bytes [from, to)
//! <prefix>quarantine/<source key>{,.reason.json}                 inputs that could not be ingested
//! ```

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

    /// The contact date of a master CSV's key, if `key` is one ([`Self::master`]).
    pub fn master_date<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(&self.masters_prefix())?
            .strip_prefix("date=")?
            .strip_suffix("/transcripts.csv")
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

    /// Ingest's exactly-once state of one contact date's master (markers and checkpoint):
    /// outside the prefix Athena reads. `append::state_prefix` derives the same key from the
    /// master's key.
    pub fn ingest_state(&self, date: &str) -> String {
        format!("{}state/ingest/date={date}/", self.prefix)
    }

    /// Classify's watermark (and claim) of one contact date.
    pub fn watermark(&self, date: &str) -> String {
        format!("{}state/classify/date={date}/watermark.json", self.prefix)
    }

    /// The prefix of the labeled parts of one contact date (the Athena table's partition).
    pub fn labeled_prefix(&self, date: &str) -> String {
        format!("{}labeled/date={date}/", self.prefix)
    }

    /// The labeled part of master bytes `[from, to)`; offsets are zero-padded so names sort.
    pub fn part(&self, date: &str, from: u64, to: u64) -> String {
        format!("{}part-{from:020}-{to:020}.csv", self.labeled_prefix(date))
    }

    /// The state of the batch-transform job that labels master bytes `[from, to)`.
    pub fn transform_dir(&self, date: &str, from: u64, to: u64) -> String {
        format!(
            "{}state/transform/date={date}/part-{from:020}-{to:020}/",
            self.prefix
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_sits_under_the_prefix_where_the_table_says() {
        let l = Layout::new("out");
        let d = "2026-11-20";
        assert_eq!(
            l.master(d),
            "out/transcripts/date=2026-11-20/transcripts.csv"
        );
        assert_eq!(l.master_date(&l.master(d)), Some(d));
        assert_eq!(
            l.master_date("out/transcripts/date=2026-11-20/other.csv"),
            None
        );
        assert_eq!(l.ingest_state(d), "out/state/ingest/date=2026-11-20/");
        assert_eq!(
            crate::append::state_prefix(&l.master(d)),
            l.ingest_state(d),
            "ingest derives its state from the master's key"
        );
        assert_eq!(l.touched(d), "out/state/touched/date=2026-11-20.json");
        assert_eq!(
            l.watermark(d),
            "out/state/classify/date=2026-11-20/watermark.json"
        );
        assert_eq!(
            l.part(d, 9, 100),
            "out/labeled/date=2026-11-20/part-00000000000000000009-00000000000000000100.csv"
        );
        assert_eq!(
            l.transform_dir(d, 9, 100),
            "out/state/transform/date=2026-11-20/part-00000000000000000009-00000000000000000100/"
        );
        assert_eq!(l.quarantine_copy("a/b.json"), "out/quarantine/a/b.json");
        assert_eq!(
            l.quarantine_note("a/b.json"),
            "out/quarantine/a/b.json.reason.json"
        );
        for k in [l.master(d), l.watermark(d), l.part(d, 0, 1), l.touched(d)] {
            assert!(l.is_ours(&k), "{k}");
        }
        assert_eq!(
            Layout::new("").master(d),
            "transcripts/date=2026-11-20/transcripts.csv"
        );
    }
}
