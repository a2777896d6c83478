//! Parse -> row -> CSV on one thread: the median time per file, and per stage (parse, row,
//! transcript, CSV) to show what dominates.
//!
//! Usage: parse_bench MANIFEST_JSON [--seconds S] [--dump-dir DIR]
//! Prints one JSON object. With `--dump-dir`, writes each file's CSV record there as
//! `<name>.csv` so the run script can check it against the Python seed's.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bench::{median, time_loop, Manifest};
use contact_lens::Participants;
use master_csv::encode::encode_rows;
use master_csv::Row;
use serde_json::json;

const NOW: &str = "2026-01-01T00:00:00Z";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut manifest = None;
    let mut seconds = 1.0f64;
    let mut dump_dir: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().context("--seconds S")?.parse()?,
            "--dump-dir" => dump_dir = Some(args.next().context("--dump-dir DIR")?.into()),
            _ if manifest.is_none() => manifest = Some(PathBuf::from(a)),
            other => bail!("unexpected argument {other}"),
        }
    }
    let manifest = Manifest::read(&manifest.context("usage: parse_bench MANIFEST_JSON")?)?;
    let budget = Duration::from_secs_f64(seconds);

    let mut files = Vec::new();
    for f in &manifest.files {
        let body = std::fs::read(&f.path).with_context(|| f.path.clone())?;
        let key = f.key.as_str();
        let contact = contact_lens::parse(&body, Some(key))?;
        let row = Row::from_contact(&contact, key, Participants::All, NOW)?;
        let csv = encode_rows(std::slice::from_ref(&row));
        if let Some(dir) = &dump_dir {
            std::fs::write(dir.join(format!("{}.csv", f.name)), &csv)?;
        }

        let full = time_loop(budget, 20, || {
            let c = contact_lens::parse(&body, Some(key)).expect("parses");
            let r = Row::from_contact(&c, key, Participants::All, NOW).expect("row");
            encode_rows(&[r])
        });
        let parse = time_loop(budget / 2, 20, || contact_lens::parse(&body, Some(key)));
        let skim = time_loop(budget / 2, 20, || {
            serde_json::from_slice::<serde::de::IgnoredAny>(&body).expect("JSON")
        });
        let value = time_loop(budget / 2, 20, || {
            serde_json::from_slice::<serde_json::Value>(&body).expect("JSON")
        });
        let row_t = time_loop(budget / 2, 20, || {
            Row::from_contact(&contact, key, Participants::All, NOW)
        });
        let transcript = time_loop(budget / 2, 20, || contact.transcript(Participants::All));
        let encode = time_loop(budget / 2, 20, || encode_rows(std::slice::from_ref(&row)));

        let bytes = body.len() as f64;
        let stage = |t: &[f64]| {
            let m = median(t);
            json!({ "median_s": m, "mb_per_s": bytes / m / 1e6, "iters": t.len() })
        };
        files.push(json!({
            "name": f.name,
            "bytes": body.len(),
            "turns": contact.turns.len(),
            "csv_bytes": csv.len(),
            "full": stage(&full),
            "parse": stage(&parse),
            "json_skim": stage(&skim),
            "json_value": stage(&value),
            "row": stage(&row_t),
            "transcript": stage(&transcript),
            "encode": stage(&encode),
        }));
    }
    println!("{}", json!({ "files": files }));
    Ok(())
}
