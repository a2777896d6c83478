//! `calltype suggest --store DIR|s3://BUCKET [--model DIR] --n N --out to-label.csv`: the
//! calls a person should label next, from the master CSVs, as a CSV to fill in and hand to
//! `calltype train --labels`. The picking itself is [`crate::suggest`]; this reads the
//! masters and the labels already given, runs the model or the backbone, and writes the CSV.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use master_csv::Layout;
use model::{Classifier, LongText, Pool, SentenceEmbedder};
use store::ObjectStore;

use crate::suggest;
use crate::target::{AsyncStoreFn, Bucket};

/// The CSV's columns: `label` is left empty for the person to fill in.
pub const COLUMNS: [&str; 5] = ["contact_id", "excerpt", "suggested_label", "score", "label"];

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    bucket: Bucket,
    /// A trained model: suggest the calls it is least sure of. Without it: the calls that
    /// cover the kinds of calls there are, by the backbone's sentence embeddings.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Without --model: the backbone whose sentence embeddings place the calls.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    backbone: PathBuf,
    /// CSVs of calls labeled already (`contact_id` and `label` columns, e.g. an earlier
    /// to-label.csv filled in): their rows with a label are never suggested again.
    #[arg(long)]
    labeled: Vec<PathBuf>,
    /// How many calls to suggest.
    #[arg(long, default_value_t = 24)]
    n: usize,
    /// Without --model: tokens per window of a call, [CLS]/[SEP] included.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Seed of the k-means seeding (without --model).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the CSV is written; an existing file holding labels is never overwritten.
    #[arg(long)]
    out: PathBuf,
}

/// One suggested call.
struct Suggestion {
    contact_id: String,
    excerpt: String,
    label: String,
    score: Option<f32>,
}

pub fn run(args: Args) -> Result<()> {
    if args.n == 0 {
        bail!("--n 0: nothing to suggest");
    }
    let filled = labeled_ids(&args.out)?;
    if !filled.is_empty() {
        bail!(
            "{} already holds {} label(s); pass it with --labeled and write to another --out",
            args.out.display(),
            filled.len()
        );
    }
    let mut done = BTreeSet::new();
    for path in &args.labeled {
        done.extend(labeled_ids(path)?);
    }
    let rt = tokio::runtime::Runtime::new()?;
    let calls = rt.block_on(args.bucket.with(Masters(&args.bucket.prefix)))?;
    let total = calls.len();
    let calls: Vec<(String, String)> = calls
        .into_iter()
        .filter(|(id, _)| !done.contains(id))
        .collect();
    if calls.is_empty() {
        bail!("none of the {total} call(s) in the masters is left to label");
    }
    let picks = match &args.model {
        Some(dir) => by_doubt(&Classifier::load(dir)?, &calls, args.n)?,
        None => by_coverage(&args, &calls)?,
    };
    write_csv(&args.out, &picks)?;
    eprintln!(
        "{} call(s) to label in {} ({} in the masters, {} labeled already); fill in its label \
         column, then: calltype train --data DIR --labels {}",
        picks.len(),
        args.out.display(),
        total,
        total - calls.len(),
        args.out.display()
    );
    Ok(())
}

/// The contact ids with a non-empty label in a `contact_id,label` CSV; none when `path` does
/// not exist.
fn labeled_ids(path: &Path) -> Result<BTreeSet<String>> {
    if !path.exists() {
        return Ok(BTreeSet::new());
    }
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(id), Some(label)) = (col("contact_id"), col("label").or(col("category"))) else {
        bail!(
            "{}: needs contact_id and label columns (it has {})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let mut out = BTreeSet::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), n + 2))?;
        if !record.get(label).unwrap_or("").trim().is_empty() {
            out.insert(record.get(id).unwrap_or("").trim().to_string());
        }
    }
    Ok(out)
}

/// Every call of every master CSV under the prefix, once each: (contact id, transcript).
struct Masters<'a>(&'a str);

impl AsyncStoreFn<Vec<(String, String)>> for Masters<'_> {
    async fn call<S: ObjectStore + 'static>(self, store: S) -> Result<Vec<(String, String)>> {
        let layout = Layout::new(self.0);
        let mut keys: Vec<String> = store
            .list(&layout.masters_prefix())
            .await?
            .into_iter()
            .map(|m| m.key)
            .filter(|k| layout.master_date(k).is_some())
            .collect();
        keys.sort();
        let (mut seen, mut calls) = (BTreeSet::new(), Vec::new());
        for key in keys {
            let Some(object) = store.get(&key).await? else {
                continue; // deleted since the listing
            };
            let rows = master_csv::encode::decode_rows(&object.body)
                .with_context(|| format!("{key}: not a master CSV"))?;
            for row in rows {
                if seen.insert(row.contact_id.clone()) {
                    calls.push((row.contact_id, row.transcript));
                }
            }
        }
        if calls.is_empty() {
            bail!(
                "no master CSVs under {}: run the pipeline (or calltype ingest) first",
                layout.masters_prefix()
            );
        }
        Ok(calls)
    }
}

fn bar(len: usize, what: &str) -> ProgressBar {
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!("{what} {{bar:30}} {{pos}}/{{len}} calls {{eta}}"))
            .expect("valid template"),
    )
}

/// The excerpt of `text` a window covers.
fn excerpt(text: &str, span: &std::ops::Range<usize>) -> String {
    text.get(span.clone()).unwrap_or(text).trim().to_string()
}

/// Without a model: the calls that cover the kinds there are ([`suggest::coverage_picks`]).
fn by_coverage(args: &Args, calls: &[(String, String)]) -> Result<Vec<Suggestion>> {
    let embedder = SentenceEmbedder::load(&args.backbone).with_context(|| {
        format!(
            "{}: the backbone for --model-less suggestions (make backbone fetches it)",
            args.backbone.display()
        )
    })?;
    let max_tokens = args.max_tokens.clamp(3, embedder.max_positions());
    let bar = bar(calls.len(), "embedding");
    let mut windows = Vec::with_capacity(calls.len());
    let mut vectors = Vec::with_capacity(calls.len());
    for (_, text) in calls {
        let ws = embedder
            .text_encoder()
            .windows_with_spans(text, max_tokens, max_tokens / 4)?;
        let ids: Vec<Vec<u32>> = ws.iter().map(|w| w.ids.clone()).collect();
        vectors.push(embedder.embed(&ids)?);
        windows.push(ws);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let common = suggest::centre(vectors.iter().flatten().map(Vec::as_slice));
    let chosen: Vec<usize> = vectors
        .iter()
        .map(|v| suggest::distinctive_window(v, &common))
        .collect();
    let points: Vec<Vec<f32>> = vectors
        .iter()
        .zip(&chosen)
        .map(|(v, &w)| v[w].clone())
        .collect();
    Ok(suggest::coverage_picks(&points, args.n, args.seed)
        .into_iter()
        .map(|i| Suggestion {
            contact_id: calls[i].0.clone(),
            excerpt: excerpt(&calls[i].1, &windows[i][chosen[i]].span),
            label: String::new(),
            score: None,
        })
        .collect())
}

/// With a model: the calls it is least sure of ([`suggest::doubt_picks`]), each shown by the
/// window that speaks loudest for its predicted label.
fn by_doubt(clf: &Classifier, calls: &[(String, String)], n: usize) -> Result<Vec<Suggestion>> {
    let s = *clf.settings();
    let (overlap, pool) = match s.long_text {
        LongText::Windows { overlap, pool } => (overlap, pool),
        LongText::HeadTail { .. } => (s.max_tokens / 4, Pool::Max),
    };
    let bar = bar(calls.len(), "scoring");
    let (mut tops, mut margins, mut shown) = (Vec::new(), Vec::new(), Vec::new());
    for (_, text) in calls {
        let ws = clf
            .text_encoder()
            .windows_with_spans(text, s.max_tokens, overlap)?;
        let ids: Vec<Vec<u32>> = ws.iter().map(|w| w.ids.clone()).collect();
        let scored = clf.score_sequences(&ids)?;
        let probs = clf.pool_as(&scored, pool);
        let logits = scored.logits;
        let (top, p, margin) = suggest::top_two(&probs);
        // The window whose own probability of the predicted label is the largest.
        let for_top: Vec<f32> = logits
            .iter()
            .map(|l| model::softmax(l, s.temperature)[top])
            .collect();
        let loudest = suggest::top_two(&for_top).0;
        tops.push(top);
        margins.push(margin);
        shown.push((excerpt(text, &ws[loudest].span), p));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(suggest::doubt_picks(&tops, &margins, n)
        .into_iter()
        .map(|i| Suggestion {
            contact_id: calls[i].0.clone(),
            excerpt: shown[i].0.clone(),
            label: clf.labels()[tops[i]].clone(),
            score: Some(shown[i].1),
        })
        .collect())
}

fn write_csv(path: &Path, picks: &[Suggestion]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record(COLUMNS)?;
    for p in picks {
        let score = p.score.map(|s| format!("{s:.4}")).unwrap_or_default();
        w.write_record([p.contact_id.as_str(), &p.excerpt, &p.label, &score, ""])?;
    }
    w.flush()?;
    Ok(())
}
