//! Model arguments that name a Hugging Face model id instead of a directory
//! (`--backbone distilbert-base-uncased`): resolved through the local Hugging Face cache
//! (`HF_HOME`, else `~/.cache/huggingface`, shared with Python's `huggingface_hub`), downloading
//! what is missing with `hf-hub` when online. `HF_HUB_OFFLINE=1` never touches the network;
//! `HF_ENDPOINT` points at a mirror. The `model` crate itself reads local directories only.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hf_hub::{Cache, Repo};

/// Files a model directory needs; the rest are fetched when the repository has them.
const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
const OPTIONAL: [&str; 3] = [
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// `arg` itself when it is a directory; else, when it reads as a model id (`name` or
/// `owner/name`, optionally `@revision`), the cached snapshot directory holding its files.
pub fn resolve(arg: &Path) -> Result<PathBuf> {
    if arg.is_dir() {
        return Ok(arg.to_path_buf());
    }
    let Some((id, revision)) = arg.to_str().and_then(model_id) else {
        bail!(
            "{} is not a directory (nor a Hugging Face model id)",
            arg.display()
        );
    };
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !matches!(v.as_str(), "" | "0"));
    let repo = match revision {
        Some(rev) => Repo::with_revision(id.to_string(), hf_hub::RepoType::Model, rev.to_string()),
        None => Repo::model(id.to_string()),
    };
    let cache = Cache::from_env();
    let cached = cache.repo(repo.clone());
    let mut paths = Vec::new();
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| cached.get(f).is_none())
        .collect();
    if missing.is_empty() {
        paths.extend(REQUIRED.iter().filter_map(|f| cached.get(f)));
    } else if offline {
        bail!(
            "{} is not a directory, and the Hugging Face model {id} is not in the cache at {} \
             (missing {}); HF_HUB_OFFLINE is set, so nothing was downloaded. Download it once \
             online, or pass a local model directory",
            arg.display(),
            cache.path().display(),
            missing.join(", ")
        );
    } else {
        let api = hf_hub::api::sync::ApiBuilder::from_env()
            .with_progress(false)
            .build()
            .context("cannot set up the Hugging Face Hub client")?;
        let remote = api.repo(repo);
        eprintln!(
            "fetching {id} from the Hugging Face Hub into {}",
            cache.path().display()
        );
        for f in REQUIRED {
            let path = remote.get(f).with_context(|| {
                format!(
                    "cannot download {f} of the Hugging Face model {id} (offline? set HF_HUB_OFFLINE=1 \
                     to use only the cache, or pass a local model directory)"
                )
            })?;
            paths.push(path);
        }
        for f in OPTIONAL {
            // Not every repository has these; tokenizer.json is what we read.
            let _ = remote.get(f);
        }
    }
    let dir = paths[0]
        .parent()
        .map(Path::to_path_buf)
        .context("cached file without a folder")?;
    if let Some(p) = paths.iter().find(|p| p.parent() != Some(dir.as_path())) {
        bail!(
            "the cached files of {id} are not in one snapshot folder ({})",
            p.display()
        );
    }
    Ok(dir)
}

/// `owner/name[@rev]` or `name[@rev]` with the characters Hugging Face allows; not paths
/// (`./x`, `/x`, `a/b/c`, anything with `..`).
fn model_id(s: &str) -> Option<(&str, Option<&str>)> {
    let (id, rev) = match s.split_once('@') {
        Some((id, rev)) if !rev.is_empty() => (id, Some(rev)),
        Some(_) => return None,
        None => (s, None),
    };
    let parts: Vec<&str> = id.split('/').collect();
    let ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && !p.contains("..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (parts.len() <= 2 && parts.iter().all(|p| ok(p))).then_some((id, rev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_told_from_paths() {
        assert_eq!(
            model_id("distilbert-base-uncased"),
            Some(("distilbert-base-uncased", None))
        );
        assert_eq!(
            model_id("sentence-transformers/all-MiniLM-L6-v2@main"),
            Some(("sentence-transformers/all-MiniLM-L6-v2", Some("main")))
        );
        for path in ["./models/x", "/abs/x", "a/b/c", "../x", "x@", "", "a b"] {
            assert_eq!(model_id(path), None, "{path}");
        }
    }
}
