//! `calltype package --model DIR --out model.tar.gz`: a SageMaker model archive.
//!
//! SageMaker unpacks `model.tar.gz` into `/opt/ml/model`, so the Hugging Face files
//! (config.json, model.safetensors, tokenizer.json, ...) sit at the archive root.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use model::Classifier;

#[derive(clap::Args)]
pub struct Args {
    /// A trained model directory (Hugging Face layout).
    #[arg(long)]
    model: PathBuf,
    /// The archive to write.
    #[arg(long, default_value = "model.tar.gz")]
    out: PathBuf,
}

/// Files a servable model directory must hold.
const REQUIRED: &[&str] = &["config.json", "model.safetensors", "tokenizer.json"];

pub fn run(args: Args) -> Result<()> {
    for f in REQUIRED {
        if !args.model.join(f).is_file() {
            bail!("{} has no {f}: not a model directory", args.model.display());
        }
    }
    // What goes into the archive must load the way `serve` will load it.
    let classifier = Classifier::load(&args.model)
        .with_context(|| format!("cannot load the model in {}", args.model.display()))?;
    let out_abs = std::path::absolute(&args.out)?;
    let files: Vec<PathBuf> = files_under(&args.model)?
        .into_iter()
        .filter(|rel| std::path::absolute(args.model.join(rel)).ok().as_ref() != Some(&out_abs))
        .collect();

    let tmp = args.out.with_extension("tmp");
    let written = write_archive(&args.model, &files, &tmp);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let size = std::fs::metadata(&args.out)?.len();
    println!(
        "{}: {} files, {:.1} MB, labels {}",
        args.out.display(),
        files.len(),
        size as f64 / 1e6,
        classifier.labels().join(", ")
    );
    Ok(())
}

/// Regular files under `dir`, relative to it, sorted (so archives are reproducible).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let entries =
            std::fs::read_dir(&abs).with_context(|| format!("cannot list {}", abs.display()))?;
        for entry in entries {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            let kind = std::fs::metadata(entry.path())?;
            if kind.is_dir() {
                stack.push(rel);
            } else if kind.is_file() {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn write_archive(dir: &Path, files: &[PathBuf], to: &Path) -> Result<()> {
    let file = File::create(to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(true);
    for rel in files {
        let mut f = File::open(dir.join(rel))
            .with_context(|| format!("cannot read {}", dir.join(rel).display()))?;
        tar.append_file(rel, &mut f)?;
    }
    tar.into_inner()?.finish()?.sync_all()?;
    Ok(())
}
