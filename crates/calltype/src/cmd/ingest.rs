//! `calltype ingest --store DIR|s3://BUCKET`: the ingest Lambda's logic over a whole store.

use std::collections::{BTreeMap, HashSet};

use anyhow::{bail, Result};
use contact_lens::Participants;
use indicatif::{ProgressBar, ProgressStyle};
use ingest::{ingest_batch, BatchReport, Copy, Settings};
use master_csv::{encode::present_contacts, Layout};
use store::cas::RetryPolicy;
use store::ObjectStore;

use crate::target::{AsyncStoreFn, Bucket};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    bucket: Bucket,
    /// Which copy of each analysis to ingest.
    #[arg(long, default_value = "redacted")]
    copy: Copy,
    /// Whose turns the transcript holds: all, customer or agent.
    #[arg(long, default_value = "all")]
    participants: Participants,
    /// Only look at source keys under this prefix.
    #[arg(long, default_value = "")]
    source_prefix: String,
    /// Files per batch (one append per partition per batch).
    #[arg(long, default_value_t = 200)]
    batch: usize,
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let report = args.bucket.with(Run(&args)).await?;
        println!("{}", serde_json::to_string(&report)?);
        if report.failed > 0 {
            bail!(
                "{} file(s) failed transiently; run again to retry them",
                report.failed
            );
        }
        Ok(())
    })
}

struct Run<'a>(&'a Args);

impl AsyncStoreFn<BatchReport> for Run<'_> {
    async fn call<S: ObjectStore + 'static>(self, store: S) -> Result<BatchReport> {
        let args = self.0;
        let settings = Settings {
            layout: Layout::new(&args.bucket.prefix),
            copy: args.copy,
            participants: args.participants,
            ..Settings::default()
        };
        let pending = pending_keys(&store, &settings, &args.source_prefix).await?;
        let bar = ProgressBar::new(pending.len() as u64).with_style(
            ProgressStyle::with_template("ingest {bar:40} {pos}/{len} files {per_sec} eta {eta}")
                .expect("valid template"),
        );
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let policy = RetryPolicy::default();
        let mut total = BatchReport::default();
        for chunk in pending.chunks(args.batch.max(1)) {
            let (_, r) = ingest_batch(&store, &settings, &policy, chunk, &now).await;
            total.add(&r);
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(total)
    }
}

/// Analysis keys of the configured copy whose file is not in its master CSV yet. A later
/// analysis of a contact already present is handed to ingest too, which reports it as
/// superseded rather than skipping it silently.
async fn pending_keys<S: ObjectStore>(
    store: &S,
    settings: &Settings,
    source_prefix: &str,
) -> Result<Vec<String>> {
    let mut by_date: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let want_redacted = settings.copy == Copy::Redacted;
    for meta in store.list(source_prefix).await? {
        if settings.layout.is_ours(&meta.key) {
            continue;
        }
        let Some(info) = contact_lens::parse_key(&meta.key) else {
            continue;
        };
        if info.redacted != want_redacted {
            continue;
        }
        // Keys without a date are left to the ingest core, which reads the file's own date.
        let date = info
            .date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        by_date.entry(date).or_default().push(meta.key);
    }
    let mut pending = Vec::new();
    for (date, keys) in by_date {
        let present: HashSet<String> = if date.is_empty() {
            HashSet::new()
        } else {
            match store.get(&settings.layout.master(&date)).await? {
                Some(obj) => present_contacts(&obj.body, true)?
                    .into_values()
                    .map(|p| p.source_key)
                    .collect(),
                None => HashSet::new(),
            }
        };
        pending.extend(keys.into_iter().filter(|k| !present.contains(k)));
    }
    Ok(pending)
}
