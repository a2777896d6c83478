//! `calltype parse FILE [--key KEY]`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use contact_lens::Participants;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// A Contact Lens post-call analysis JSON file.
    file: PathBuf,
    /// The file's S3 key, for the contact id, date and copy when the file lacks them.
    #[arg(long)]
    key: Option<String>,
    /// Whose turns the transcript holds: all (with role tags), customer or agent.
    #[arg(long, default_value = "all")]
    participants: Participants,
}

pub fn run(args: Args) -> Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| args.file.to_string_lossy().into_owned());
    let c = contact_lens::parse(&bytes, Some(&key))
        .map_err(|e| anyhow::anyhow!("{}: {}", args.file.display(), e.reason()))?;
    let out = json!({
        "contact_id": c.contact_id,
        "instance_id": c.instance_id,
        "channel": c.channel.to_string(),
        "redacted": c.redacted,
        "language": c.language,
        "version": c.version,
        "contact_date": c.contact_date.map(|d| d.format("%Y-%m-%d").to_string()),
        "duration_ms": c.duration_ms,
        "turns": c.turns.len(),
        "sentiment_customer": c.sentiment_customer,
        "sentiment_agent": c.sentiment_agent,
        "categories": c.categories,
        "summary": c.summary,
        "transcript": c.transcript(args.participants),
    });
    println!("{out}");
    Ok(())
}
