//! Parse throughput over a directory of analysis files: parse, then build the transcript text.
//!
//! `cargo run -p contact-lens --release --example throughput -- DIR [ROUNDS]`
//! (DIR defaults to the STAR-derived train split beside the repository).

use std::time::Instant;

use contact_lens::{parse, Participants};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/datasets/star-contactlens/train"
        )
        .to_string()
    });
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("reading the directory") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|x| x == "json") {
            let key = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((key, std::fs::read(&path).expect("reading a file")));
        }
    }
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let mut best = f64::MAX;
    let mut chars = 0usize;
    for _ in 0..rounds {
        let start = Instant::now();
        for (key, b) in &files {
            if let Ok(c) = parse(b, Some(key)) {
                chars += c.transcript(Participants::All).len();
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{} files, {:.1} MB: best of {rounds} rounds {:.3} s = {:.0} MB/s ({} transcript bytes)",
        files.len(),
        bytes as f64 / 1e6,
        best,
        bytes as f64 / 1e6 / best,
        chars / rounds.max(1)
    );
}
