//! `calltype classify --store DIR|s3://BUCKET (--model DIR | --endpoint NAME)`: the classify
//! Lambda's logic, with the model in-process (the embedded default) or a SageMaker endpoint.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::NaiveDate;
use classify::{
    Classifier, ClassifyError, EndpointClassifier, EndpointOptions, Label, ModelClassifier,
    RunReport, WireFormat,
};
use indicatif::{ProgressBar, ProgressStyle};
use master_csv::Layout;
use store::ObjectStore;

use crate::target::{AsyncStoreFn, Bucket, StoreArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    bucket: Bucket,
    /// A trained model directory, run in-process.
    #[arg(
        long,
        conflicts_with = "endpoint",
        required_unless_present = "endpoint"
    )]
    model: Option<PathBuf>,
    /// A SageMaker endpoint name, called through the SageMaker runtime API.
    #[arg(long)]
    endpoint: Option<String>,
    /// SageMaker runtime endpoint URL (e.g. a local `calltype serve`: http://127.0.0.1:8080).
    #[arg(long, env = "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")]
    sagemaker_endpoint_url: Option<String>,
    /// Wire format for the endpoint: json (Hugging Face toolkit) or jsonlines.
    #[arg(long, default_value = "json")]
    format: WireFormat,
    /// Look only at today and the days before it (as the Lambda does), plus the partitions
    /// ingest recorded as grown. Default: every partition, whatever its date.
    #[arg(long)]
    lookback_days: Option<u32>,
    /// Look at every partition there is, whatever its date (the default).
    #[arg(long, conflicts_with = "lookback_days")]
    all_dates: bool,
    /// "Today" for --lookback-days (YYYY-MM-DD, default: today in UTC).
    #[arg(long)]
    today: Option<NaiveDate>,
    /// Also write the transcript as the labeled parts' last column.
    #[arg(long)]
    include_transcript: bool,
    /// Print the run's JSON report (the default when stdout is not a terminal) instead of a
    /// short summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let report = args.bucket.with(Run(&args)).await?;
        if args.json || !std::io::stdout().is_terminal() {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{}",
                summary(
                    &report,
                    &store_name(&args.bucket.store),
                    &args.bucket.prefix
                )
            );
        }
        if let Some(e) = &report.error {
            bail!("{e}; run again to retry");
        }
        if report.failed() {
            bail!(
                "{} partition(s) failed; run again to retry them",
                report.failed_partitions
            );
        }
        Ok(())
    })
}

struct Run<'a>(&'a Args);

impl AsyncStoreFn<RunReport> for Run<'_> {
    async fn call<S: ObjectStore + 'static>(self, store: S) -> Result<RunReport> {
        let args = self.0;
        let layout = Layout::new(&args.bucket.prefix);
        let today = args
            .today
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let settings = classify::Settings {
            layout,
            lookback_days: args.lookback_days.unwrap_or(1),
            every_partition: args.lookback_days.is_none(),
            include_transcript: args.include_transcript,
            ..classify::Settings::default()
        };
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("classify {spinner} {pos} rows labeled {per_sec}")
                .expect("valid template"),
        );
        let report = match (&args.model, &args.endpoint) {
            (Some(dir), _) => {
                let m = ModelClassifier::load(dir)?;
                classify::run(&store, &Counted(m, bar.clone()), &settings, today).await?
            }
            (None, Some(name)) => {
                let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let mut b = aws_sdk_sagemakerruntime::config::Builder::from(&conf);
                if let Some(url) = &args.sagemaker_endpoint_url {
                    b = b.endpoint_url(url);
                }
                let client = aws_sdk_sagemakerruntime::Client::from_conf(b.build());
                let e = EndpointClassifier::new(
                    client,
                    EndpointOptions::new(name.clone(), args.format),
                );
                classify::run(&store, &Counted(e, bar.clone()), &settings, today).await?
            }
            (None, None) => bail!("give --model DIR or --endpoint NAME"),
        };
        bar.finish_and_clear();
        Ok(report)
    }
}

/// The store as the user named it.
fn store_name(arg: &StoreArg) -> String {
    match arg {
        StoreArg::Local(dir) => dir.display().to_string(),
        StoreArg::S3 { bucket } => format!("s3://{bucket}"),
    }
}

/// What a person at a terminal reads after a run: what was labeled where, what failed, and
/// a hint when nothing was there to label.
fn summary(report: &RunReport, store: &str, prefix: &str) -> String {
    let labeled: Vec<&str> = report
        .partitions
        .iter()
        .filter(|p| p.counts.rows_labeled > 0)
        .map(|p| p.date.as_str())
        .collect();
    let calls = |n: u64| if n == 1 { "call" } else { "calls" };
    let mut out = format!(
        "labeled {} {} in {} partition{}",
        report.counts.rows_labeled,
        calls(report.counts.rows_labeled),
        labeled.len(),
        if labeled.len() == 1 { "" } else { "s" }
    );
    if !labeled.is_empty() {
        const SHOWN: usize = 5;
        let mut dates = labeled[..labeled.len().min(SHOWN)].join(", ");
        if labeled.len() > SHOWN {
            dates.push_str(&format!(", and {} more", labeled.len() - SHOWN));
        }
        out.push_str(&format!(" ({dates})"));
    }
    out.push_str(&format!("; {} failed", report.counts.rows_failed));
    if report.counts.rows_skipped > 0 {
        out.push_str(&format!(
            ", {} skipped (no transcript)",
            report.counts.rows_skipped
        ));
    }
    let failed: Vec<&str> = report
        .partitions
        .iter()
        .filter(|p| p.error.is_some())
        .map(|p| p.date.as_str())
        .collect();
    if !failed.is_empty() {
        out.push_str(&format!("\nfailed partitions: {}", failed.join(", ")));
    }
    if report.counts.rows_read == 0 && failed.is_empty() {
        if report.partitions.iter().all(|p| p.master_bytes == 0) {
            out.push_str(&format!(
                "\nnothing to label: no master CSVs under {store}/{}; \
                 run `calltype ingest --store {store}` first",
                Layout::new(prefix).masters_prefix()
            ));
        } else {
            out.push_str("\nnothing new: every row is labeled already");
        }
    }
    out
}

/// Counts labeled rows on the progress bar.
struct Counted<C>(C, ProgressBar);

impl<C: Classifier> Classifier for Counted<C> {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        let out = self.0.classify(texts).await?;
        self.1.inc(out.len() as u64);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classify::{Counts, PartitionReport};

    fn partition(date: &str, master_bytes: u64, labeled: u64) -> PartitionReport {
        PartitionReport {
            date: date.into(),
            master_bytes,
            counts: Counts {
                rows_read: labeled,
                rows_labeled: labeled,
                ..Counts::default()
            },
            ..PartitionReport::default()
        }
    }

    fn report(partitions: Vec<PartitionReport>) -> RunReport {
        let mut run = RunReport::default();
        for p in partitions {
            run.add(p);
        }
        run
    }

    #[test]
    fn the_summary_names_the_partitions_labeled() {
        let r = report(vec![
            partition("2024-03-01", 900, 7),
            partition("2024-03-02", 900, 5),
            partition("2026-11-20", 0, 0),
        ]);
        assert_eq!(
            summary(&r, "bucket", "calltype/"),
            "labeled 12 calls in 2 partitions (2024-03-01, 2024-03-02); 0 failed"
        );
    }

    #[test]
    fn the_summary_says_why_nothing_was_labeled() {
        let empty = summary(
            &report(vec![partition("2026-11-20", 0, 0)]),
            "b",
            "calltype/",
        );
        assert!(
            empty.contains("no master CSVs under b/calltype/transcripts/")
                && empty.contains("calltype ingest --store b"),
            "{empty}"
        );
        let done = summary(
            &report(vec![partition("2024-03-01", 900, 0)]),
            "b",
            "calltype/",
        );
        assert!(done.ends_with("every row is labeled already"), "{done}");
    }
}
