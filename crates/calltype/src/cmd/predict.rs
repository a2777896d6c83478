//! `calltype predict --model DIR [TEXT ... | --input CSV|DIR]`: labels as JSON lines.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use model::Classifier;
use serde_json::{json, Map, Value};

use super::data::{self, Text};

/// Texts per call into the model, so that output streams on large inputs.
const CHUNK: usize = 256;

#[derive(clap::Args)]
pub struct Args {
    /// A trained model directory (Hugging Face layout), or a Hugging Face model id.
    #[arg(long)]
    model: PathBuf,
    /// Texts to classify, one result line each.
    #[arg(conflicts_with = "input")]
    texts: Vec<String>,
    /// A CSV with a text column (contact_id is echoed when present), or a directory of
    /// Contact Lens analysis files.
    #[arg(long)]
    input: Option<PathBuf>,
    /// The text column of the CSV [default: transcript, else text].
    #[arg(long)]
    text_column: Option<String>,
    /// Add every label's probability as `scores`.
    #[arg(long)]
    all_scores: bool,
}

pub fn run(mut args: Args) -> Result<()> {
    args.model = crate::hub::resolve(&args.model)?;
    let texts: Vec<Text> = match &args.input {
        Some(input) => data::load_texts(input, args.text_column.as_deref())?,
        None if args.texts.is_empty() => bail!("give texts to classify, or --input CSV|DIR"),
        None => args
            .texts
            .iter()
            .map(|t| Text {
                id: None,
                text: t.clone(),
            })
            .collect(),
    };
    let classifier = Classifier::load(&args.model)
        .with_context(|| format!("cannot load the model in {}", args.model.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for chunk in texts.chunks(CHUNK) {
        let refs: Vec<&str> = chunk.iter().map(|t| t.text.as_str()).collect();
        let predictions = classifier.predict(&refs)?;
        for (t, p) in chunk.iter().zip(predictions) {
            let mut line = Map::new();
            if let Some(id) = &t.id {
                line.insert("contact_id".into(), json!(id));
            }
            line.insert("label".into(), json!(p.label));
            line.insert("score".into(), json!(p.score));
            if args.all_scores {
                let scores: Map<String, Value> = classifier
                    .labels()
                    .iter()
                    .zip(&p.scores)
                    .map(|(l, s)| (l.clone(), json!(s)))
                    .collect();
                line.insert("scores".into(), Value::Object(scores));
            }
            writeln!(out, "{}", Value::Object(line))?;
        }
        out.flush()?;
    }
    Ok(())
}
