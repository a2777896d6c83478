//! Parse -> row -> CSV on one thread: the median time per file, and per stage (parse, row,
//! transcript, CSV) to show what dominates. `contact_lens::parse` (its fast reader) is also
//! timed against the same parse through serde_json alone, the reference it falls back to.
//!
//! Usage: parse_bench MANIFEST_JSON [--seconds S] [--dump-dir DIR]
//! (`S`: seconds per file and stage, spread over interleaved rounds.)
//! Prints one JSON object. With `--dump-dir`, writes each file's CSV record there as
//! `<name>.csv` so the run script can check it against the Python seed's.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bench::{median, time_loop, Manifest};
use contact_lens::{ParseOptions, Participants};
use master_csv::encode::encode_rows;
use master_csv::Row;
use serde::de::IgnoredAny;
use serde_json::json;

const NOW: &str = "2026-01-01T00:00:00Z";
const ROUNDS: u32 = 5;

/// One timed stage of the pipeline.
type Stage<'a> = Box<dyn FnMut() + 'a>;

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
        let reference =
            contact_lens::parse_with_serde_json(&body, Some(key), ParseOptions::default())?;
        let reference_row = Row::from_contact(&reference, key, Participants::All, NOW)?;
        anyhow::ensure!(
            reference_row == row,
            "{}: the fast reader and serde_json give different rows",
            f.name
        );
        if let Some(dir) = &dump_dir {
            std::fs::write(dir.join(format!("{}.csv", f.name)), &csv)?;
        }

        // Stages are timed in interleaved rounds so that load from other processes (this
        // machine is shared) falls on all of them alike.
        let mut stages: Vec<(&str, Stage<'_>)> = vec![
            (
                "full",
                Box::new(|| {
                    let c = contact_lens::parse(&body, Some(key)).expect("parses");
                    let r = Row::from_contact(&c, key, Participants::All, NOW).expect("row");
                    black_box(encode_rows(&[r]));
                }),
            ),
            (
                "parse",
                Box::new(|| {
                    black_box(contact_lens::parse(&body, Some(key)).expect("parses"));
                }),
            ),
            (
                "json_skim",
                Box::new(|| {
                    black_box(serde_json::from_slice::<IgnoredAny>(&body).expect("JSON"));
                }),
            ),
            (
                "parse_serde_json",
                Box::new(|| {
                    black_box(
                        contact_lens::parse_with_serde_json(
                            &body,
                            Some(key),
                            ParseOptions::default(),
                        )
                        .expect("parses"),
                    );
                }),
            ),
            (
                "row",
                Box::new(|| {
                    black_box(
                        Row::from_contact(&contact, key, Participants::All, NOW).expect("row"),
                    );
                }),
            ),
            (
                "transcript",
                Box::new(|| {
                    black_box(contact.transcript(Participants::All));
                }),
            ),
            (
                "encode",
                Box::new(|| {
                    black_box(encode_rows(std::slice::from_ref(&row)));
                }),
            ),
        ];
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); stages.len()];
        for _ in 0..ROUNDS {
            for (i, (_, f)) in stages.iter_mut().enumerate() {
                samples[i].extend(time_loop(budget / ROUNDS, 5, f));
            }
        }
        let bytes = body.len() as f64;
        let stage = |t: &[f64]| {
            let m = median(t);
            json!({ "median_s": m, "mb_per_s": bytes / m / 1e6, "iters": t.len() })
        };
        let mut entry = json!({
            "name": f.name,
            "bytes": body.len(),
            "turns": contact.turns.len(),
            "csv_bytes": csv.len(),
        });
        for ((name, _), t) in stages.iter().zip(&samples) {
            entry[*name] = stage(t);
        }
        files.push(entry);
    }
    println!("{}", json!({ "files": files }));
    Ok(())
}
