//! What a run did: [`Counts`] (one set of row, part and job counters that adds itself up),
//! per partition ([`PartitionReport`]) and in total ([`RunReport`]). The Lambda answers the
//! [`RunReport`] as JSON; the counters are flattened into it, so its shape is one flat object
//! per partition and one for the run.

use std::ops::AddAssign;

use serde::Serialize;

/// The counters a partition visit, a partition and a run all keep.
///
/// `rows_read = rows_labeled + rows_skipped + rows_failed` unless a part was recovered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Records read from the master.
    pub rows_read: u64,
    /// Rows written to labeled parts.
    pub rows_labeled: u64,
    /// Records not labeled on purpose: no transcript, or unreadable (too few columns).
    pub rows_skipped: u64,
    /// Records to label whose range could not be labeled in this run (they stay pending).
    pub rows_failed: u64,
    pub parts_written: u64,
    /// Parts found already written by an earlier, interrupted run (watermark moved only).
    pub parts_recovered: u64,
    /// Batch-transform jobs this run created (transform mode).
    pub jobs_started: u64,
    /// Batch-transform jobs still running when this run looked, those it started included.
    pub jobs_pending: u64,
    /// Rows in those running jobs; they are counted as read once their job completes.
    pub rows_pending: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.rows_read += o.rows_read;
        self.rows_labeled += o.rows_labeled;
        self.rows_skipped += o.rows_skipped;
        self.rows_failed += o.rows_failed;
        self.parts_written += o.parts_written;
        self.parts_recovered += o.parts_recovered;
        self.jobs_started += o.jobs_started;
        self.jobs_pending += o.jobs_pending;
        self.rows_pending += o.rows_pending;
    }
}

/// What one partition's run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PartitionReport {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The master's size when the run looked (0: no master).
    pub master_bytes: u64,
    pub watermark_before: u64,
    pub watermark_after: u64,
    #[serde(flatten)]
    pub counts: Counts,
    /// Why the partition stopped, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether that failure is worth retrying.
    pub transient: bool,
    /// The run's deadline passed before this partition was done; the rest waits.
    pub out_of_time: bool,
}

/// What a run did, in total and per partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// The classifier's name.
    pub model: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub failed_partitions: u64,
    /// Why the partitions beyond the look-back window could not be listed, if so; the window's
    /// partitions were still looked at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub partitions: Vec<PartitionReport>,
}

impl PartitionReport {
    /// An empty report for `date`.
    pub fn new(date: &str) -> Self {
        Self {
            date: date.to_string(),
            ..Self::default()
        }
    }

    /// This visit's report followed by a later visit's to the same partition in the same run:
    /// counts add up, except the running jobs, which are the later visit's.
    pub(crate) fn then(mut self, later: PartitionReport) -> PartitionReport {
        self.master_bytes = self.master_bytes.max(later.master_bytes);
        self.watermark_after = self.watermark_after.max(later.watermark_after);
        self.counts += later.counts;
        self.counts.jobs_pending = later.counts.jobs_pending;
        self.counts.rows_pending = later.counts.rows_pending;
        self.error = later.error;
        self.transient = later.transient;
        self.out_of_time = later.out_of_time;
        self
    }
}

impl RunReport {
    /// True when any partition failed, or the partitions could not be listed.
    pub fn failed(&self) -> bool {
        self.failed_partitions > 0 || self.error.is_some()
    }

    /// Adds a partition's report: its counts to the run's, a failure to `failed_partitions`.
    pub fn add(&mut self, p: PartitionReport) {
        self.counts += p.counts;
        if p.error.is_some() {
            self.failed_partitions += 1;
        }
        self.partitions.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_is_flat_and_in_the_documented_order() {
        let mut run = RunReport {
            model: "m".into(),
            ..RunReport::default()
        };
        let mut p = PartitionReport::new("2026-01-02");
        p.counts.rows_read = 3;
        p.counts.rows_labeled = 2;
        p.counts.rows_skipped = 1;
        run.add(p);
        let json = serde_json::to_string(&run).unwrap();
        assert!(
            json.starts_with(r#"{"model":"m","rows_read":3,"rows_labeled":2,"rows_skipped":1,"#),
            "{json}"
        );
        assert!(json.contains(r#""partitions":[{"date":"2026-01-02","master_bytes":0,"watermark_before":0,"watermark_after":0,"rows_read":3,"#), "{json}");
        assert_eq!(run.counts.rows_read, 3);
        assert!(!run.failed());
    }

    #[test]
    fn a_later_visit_adds_its_counts_and_replaces_the_running_jobs() {
        let mut a = PartitionReport::new("d");
        a.counts.rows_read = 5;
        a.counts.jobs_pending = 2;
        a.counts.rows_pending = 10;
        let mut b = PartitionReport::new("d");
        b.counts.rows_read = 1;
        b.counts.jobs_pending = 1;
        b.counts.rows_pending = 4;
        b.watermark_after = 9;
        let c = a.then(b);
        assert_eq!(
            (
                c.counts.rows_read,
                c.counts.jobs_pending,
                c.counts.rows_pending
            ),
            (6, 1, 4)
        );
        assert_eq!(c.watermark_after, 9);
    }
}
