//! Data for `train`, `eval` and `predict`: a CSV of texts (and labels), or a directory of
//! Contact Lens analysis files joined with a `contact_id,label` CSV.
//!
//! Texts of analysis files are extracted exactly as ingest extracts them: `contact_lens::parse`,
//! then the transcript of all participants. Problems that leave data out (unreadable files,
//! files without a label, labels without a file) are reported on stderr, never silently.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use contact_lens::Participants;

/// One labelled text.
#[derive(Debug, Clone)]
pub struct Example {
    /// The contact id, when the data has one.
    pub id: Option<String>,
    pub text: String,
    pub label: String,
}

/// One text to classify.
#[derive(Debug, Clone)]
pub struct Text {
    /// The contact id, when the data has one.
    pub id: Option<String>,
    pub text: String,
}

/// Which CSV columns hold the text and the label. `None` picks the first present of the
/// usual names.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub text: Option<String>,
    pub label: Option<String>,
}

/// The labelled-data flags `train` and `eval` share.
#[derive(clap::Args)]
pub struct LabelledData {
    /// Labelled data: a CSV with text and label columns, or a directory of Contact Lens files.
    #[arg(long)]
    pub data: PathBuf,
    /// With a directory: the `contact_id,label[,split]` CSV (default DIR/labels.csv).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// The text column of a CSV [default: transcript, else text].
    #[arg(long)]
    pub text_column: Option<String>,
    /// The label column of a CSV or labels CSV [default: label, else category].
    #[arg(long)]
    pub label_column: Option<String>,
    /// Keep only the rows whose `split` column is this (e.g. train, test).
    #[arg(long)]
    pub split: Option<String>,
}

impl LabelledData {
    /// The column names the flags ask for.
    pub fn columns(&self) -> Columns {
        Columns {
            text: self.text_column.clone(),
            label: self.label_column.clone(),
        }
    }

    /// The examples the flags name (see [`load_labelled`]).
    pub fn load(&self) -> Result<Vec<Example>> {
        load_labelled(
            &self.data,
            self.labels.as_deref(),
            &self.columns(),
            self.split.as_deref(),
        )
    }
}

const TEXT_COLUMNS: &[&str] = &["transcript", "text"];
const LABEL_COLUMNS: &[&str] = &["label", "category"];
const ID_COLUMN: &str = "contact_id";
const SPLIT_COLUMN: &str = "split";

/// Prints a warning the way the CLI prints errors.
pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("calltype: warning: {msg}");
}

/// Labelled examples from `data`: a CSV with text and label columns, or a directory of
/// analysis files plus `labels` (`contact_id,label[,split]`; `DIR/labels.csv` when not given).
/// `split` keeps only the rows whose `split` column equals it.
pub fn load_labelled(
    data: &Path,
    labels: Option<&Path>,
    columns: &Columns,
    split: Option<&str>,
) -> Result<Vec<Example>> {
    if data.is_dir() {
        let labels_path = match labels {
            Some(p) => p.to_path_buf(),
            None => {
                let p = data.join("labels.csv");
                if !p.is_file() {
                    bail!(
                        "{} is a directory of analysis files: give its labels with --labels CSV \
                         (contact_id,label)",
                        data.display()
                    );
                }
                p
            }
        };
        let labels = read_labels(&labels_path, columns.label.as_deref(), split)?;
        let contacts = read_contacts(data)?;
        Ok(join(contacts, labels, &labels_path))
    } else {
        if labels.is_some() {
            bail!("--labels goes with a directory of analysis files; a CSV carries its own labels");
        }
        read_csv(data, columns, split, true).map(|rows| {
            rows.into_iter()
                .map(|(id, text, label)| Example {
                    id,
                    text,
                    label: label.unwrap_or_default(),
                })
                .collect()
        })
    }
}

/// Texts to classify from `input`: a CSV with a text column (and `contact_id` when present),
/// or a directory of analysis files.
pub fn load_texts(input: &Path, text_column: Option<&str>) -> Result<Vec<Text>> {
    if input.is_dir() {
        Ok(read_contacts(input)?
            .into_iter()
            .map(|(id, text)| Text { id: Some(id), text })
            .collect())
    } else {
        let columns = Columns {
            text: text_column.map(str::to_string),
            label: None,
        };
        Ok(read_csv(input, &columns, None, false)?
            .into_iter()
            .map(|(id, text, _)| Text { id, text })
            .collect())
    }
}

fn open_csv(path: &Path) -> Result<(csv::Reader<std::fs::File>, Vec<String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header", path.display()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    Ok((reader, headers))
}

/// Index of the column named `wanted`, or of the first of `defaults` present.
fn column(
    path: &Path,
    headers: &[String],
    wanted: Option<&str>,
    defaults: &[&str],
    what: &str,
) -> Result<usize> {
    let names: Vec<&str> = match wanted {
        Some(w) => vec![w],
        None => defaults.to_vec(),
    };
    for n in &names {
        if let Some(i) = headers.iter().position(|h| h == n) {
            return Ok(i);
        }
    }
    bail!(
        "{}: no {what} column (looked for {}; the columns are {}); name it with --{what}-column",
        path.display(),
        names.join(" or "),
        headers.join(", ")
    )
}

fn split_column(path: &Path, headers: &[String], split: Option<&str>) -> Result<Option<usize>> {
    match split {
        None => Ok(None),
        Some(_) => match headers.iter().position(|h| h == SPLIT_COLUMN) {
            Some(i) => Ok(Some(i)),
            None => bail!(
                "{}: --split needs a `{SPLIT_COLUMN}` column (the columns are {})",
                path.display(),
                headers.join(", ")
            ),
        },
    }
}

type CsvRow = (Option<String>, String, Option<String>);

/// Rows of a text CSV: (contact id, text, label). Rows with an empty text (or an empty label,
/// when labels are wanted) are left out with a warning.
fn read_csv(
    path: &Path,
    columns: &Columns,
    split: Option<&str>,
    labelled: bool,
) -> Result<Vec<CsvRow>> {
    let (mut reader, headers) = open_csv(path)?;
    let text_i = column(
        path,
        &headers,
        columns.text.as_deref(),
        TEXT_COLUMNS,
        "text",
    )?;
    let label_i = if labelled {
        Some(column(
            path,
            &headers,
            columns.label.as_deref(),
            LABEL_COLUMNS,
            "label",
        )?)
    } else {
        None
    };
    let id_i = headers.iter().position(|h| h == ID_COLUMN);
    let split_i = split_column(path, &headers, split)?;
    let (mut rows, mut empty) = (Vec::new(), 0usize);
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), n + 2))?;
        if let (Some(i), Some(s)) = (split_i, split) {
            if record.get(i).map(str::trim) != Some(s) {
                continue;
            }
        }
        let text = record.get(text_i).unwrap_or("").trim().to_string();
        let label = label_i.map(|i| record.get(i).unwrap_or("").trim().to_string());
        if text.is_empty() || label.as_ref().is_some_and(String::is_empty) {
            empty += 1;
            continue;
        }
        let id = id_i
            .and_then(|i| record.get(i))
            .map(|s| s.trim().to_string());
        rows.push((id, text, label));
    }
    if empty > 0 {
        let what = if labelled { "text or label" } else { "text" };
        warn(format!(
            "{}: {empty} row(s) with an empty {what} left out",
            path.display()
        ));
    }
    if rows.is_empty() {
        bail!(
            "{}: no rows{}",
            path.display(),
            split
                .map(|s| format!(" in split {s:?}"))
                .unwrap_or_default()
        );
    }
    Ok(rows)
}

/// `contact_id → label` from a labels CSV, keeping only the rows of `split` when given.
fn read_labels(
    path: &Path,
    label_column: Option<&str>,
    split: Option<&str>,
) -> Result<BTreeMap<String, String>> {
    let (mut reader, headers) = open_csv(path)?;
    let id_i = column(path, &headers, Some(ID_COLUMN), &[], "id")?;
    let label_i = column(path, &headers, label_column, LABEL_COLUMNS, "label")?;
    let split_i = split_column(path, &headers, split)?;
    let mut labels = BTreeMap::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), n + 2))?;
        if let (Some(i), Some(s)) = (split_i, split) {
            if record.get(i).map(str::trim) != Some(s) {
                continue;
            }
        }
        let id = record.get(id_i).unwrap_or("").trim();
        let label = record.get(label_i).unwrap_or("").trim();
        if id.is_empty() || label.is_empty() {
            continue;
        }
        if let Some(old) = labels.insert(id.to_string(), label.to_string()) {
            if old != label {
                bail!(
                    "{}: contact {id} has two labels, {old:?} and {label:?}",
                    path.display()
                );
            }
        }
    }
    if labels.is_empty() {
        bail!(
            "{}: no labels{}",
            path.display(),
            split
                .map(|s| format!(" in split {s:?}"))
                .unwrap_or_default()
        );
    }
    Ok(labels)
}

/// Every `*.json` file under `dir`, sorted.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `(contact id, transcript)` of every analysis file under `dir`, one per contact (the
/// redacted copy when both are there, as ingest does by default). Files that do not parse
/// are left out with a warning.
pub fn read_contacts(dir: &Path) -> Result<Vec<(String, String)>> {
    let files = json_files(dir)?;
    let mut by_id: BTreeMap<String, (bool, String)> = BTreeMap::new();
    let mut failed: Vec<String> = Vec::new();
    for path in &files {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = path.to_string_lossy();
        match contact_lens::parse(&bytes, Some(&key)) {
            Ok(c) => {
                let text = c.transcript(Participants::All);
                match by_id.get(&c.contact_id) {
                    Some((redacted, _)) if *redacted || !c.redacted => {}
                    _ => {
                        by_id.insert(c.contact_id.clone(), (c.redacted, text));
                    }
                }
            }
            Err(e) => failed.push(format!("{}: {}", path.display(), e.reason())),
        }
    }
    if !failed.is_empty() {
        warn(format!(
            "{} file(s) under {} are not Contact Lens analyses and were left out, e.g. {}",
            failed.len(),
            dir.display(),
            failed[0]
        ));
    }
    if by_id.is_empty() {
        bail!("{}: no Contact Lens analysis files", dir.display());
    }
    Ok(by_id
        .into_iter()
        .map(|(id, (_, text))| (id, text))
        .collect())
}

/// Joins contacts with their labels; both sides' leftovers are reported.
fn join(
    contacts: Vec<(String, String)>,
    mut labels: BTreeMap<String, String>,
    labels_path: &Path,
) -> Vec<Example> {
    let mut out = Vec::new();
    let mut unlabelled = 0usize;
    let mut empty = 0usize;
    for (id, text) in contacts {
        match labels.remove(&id) {
            Some(_) if text.trim().is_empty() => empty += 1,
            Some(label) => out.push(Example {
                id: Some(id),
                text,
                label,
            }),
            None => unlabelled += 1,
        }
    }
    if unlabelled > 0 {
        warn(format!(
            "{unlabelled} analysis file(s) have no label in {} (or are in another split) and were left out",
            labels_path.display()
        ));
    }
    if empty > 0 {
        warn(format!(
            "{empty} labelled contact(s) have an empty transcript and were left out"
        ));
    }
    if !labels.is_empty() {
        let first = labels.keys().next().cloned().unwrap_or_default();
        warn(format!(
            "{} label(s) in {} have no analysis file (e.g. contact {first})",
            labels.len(),
            labels_path.display()
        ));
    }
    out
}

/// Examples per label, in label order.
pub fn label_counts(examples: &[Example]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for e in examples {
        *counts.entry(e.label.as_str()).or_insert(0) += 1;
    }
    counts
}

/// A seeded stratified split: about `fraction` of each label's examples go to dev, never all
/// of them (a label keeps at least one training example). At least one dev example overall
/// when `fraction > 0` and some label has two or more.
pub fn stratified_split(
    examples: Vec<Example>,
    fraction: f64,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    let mut by_label: BTreeMap<String, Vec<Example>> = BTreeMap::new();
    for e in examples {
        by_label.entry(e.label.clone()).or_default().push(e);
    }
    let mut rng = model::rng::Rng::new(seed);
    let mut take: HashMap<String, usize> = HashMap::new();
    for (label, xs) in by_label.iter_mut() {
        rng.shuffle(xs);
        let n = xs.len();
        let k = ((n as f64 * fraction).round() as usize).min(n.saturating_sub(1));
        take.insert(label.clone(), k);
    }
    if fraction > 0.0 && take.values().all(|&k| k == 0) {
        if let Some((label, _)) = by_label
            .iter()
            .filter(|(_, xs)| xs.len() >= 2)
            .max_by_key(|(_, xs)| xs.len())
        {
            take.insert(label.clone(), 1);
        }
    }
    let (mut train, mut dev) = (Vec::new(), Vec::new());
    for (label, mut xs) in by_label {
        let k = take[&label];
        let rest = xs.split_off(k);
        dev.extend(xs);
        train.extend(rest);
    }
    rng.shuffle(&mut train);
    (train, dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(label: &str, i: usize) -> Example {
        Example {
            id: None,
            text: format!("text {i}"),
            label: label.to_string(),
        }
    }

    #[test]
    fn split_is_stratified_seeded_and_keeps_a_training_example_per_label() {
        let mut data: Vec<Example> = (0..20).map(|i| ex("a", i)).collect();
        data.extend((0..10).map(|i| ex("b", i)));
        data.push(ex("c", 0));
        let (train, dev) = stratified_split(data.clone(), 0.2, 7);
        assert_eq!(train.len() + dev.len(), 31);
        let d = label_counts(&dev);
        assert_eq!(d.get("a"), Some(&4));
        assert_eq!(d.get("b"), Some(&2));
        assert_eq!(d.get("c"), None);
        let (train2, dev2) = stratified_split(data, 0.2, 7);
        let texts = |xs: &[Example]| xs.iter().map(|e| e.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&train), texts(&train2));
        assert_eq!(texts(&dev), texts(&dev2));
    }

    #[test]
    fn a_tiny_fraction_still_gives_one_dev_example() {
        let data: Vec<Example> = (0..5)
            .map(|i| ex("a", i))
            .chain((0..3).map(|i| ex("b", i)))
            .collect();
        let (train, dev) = stratified_split(data, 0.01, 1);
        assert_eq!(dev.len(), 1);
        assert_eq!(train.len(), 7);
    }
}
