//! `--backbone` / `--model` given a Hugging Face model id: resolved from the Hugging Face
//! cache (`HF_HOME`, laid out as `huggingface_hub` lays it out) without the network; a clear
//! error when the model is not cached and HF_HUB_OFFLINE is set, or the Hub cannot be reached.

use std::path::Path;
use std::process::{Command, Output};

fn calltype(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_calltype"));
    cmd.args(args)
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_ENDPOINT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run calltype")
}

/// HF_HOME with `org/tiny` cached: `hub/models--org--tiny/{refs/main, snapshots/<sha>/...}`.
fn cache_with(model: &Path) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let repo = home.path().join("hub/models--org--tiny");
    let snap = repo.join("snapshots").join(sha);
    std::fs::create_dir_all(&snap).expect("mkdir");
    std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
    std::fs::write(repo.join("refs/main"), sha).expect("ref");
    for f in std::fs::read_dir(model).expect("model dir") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, snap.join(f.file_name().expect("name"))).expect("copy");
    }
    home
}

#[test]
fn it_resolves_a_cached_model_id_offline() {
    let Some(tiny) = testdata::shared("parity/tiny-distilbert") else {
        return;
    };
    let home = cache_with(&tiny);
    let out = calltype(
        &["predict", "--model", "org/tiny", "my card never arrived"],
        &[("HF_HOME", home.path()), ("HF_HUB_OFFLINE", Path::new("1"))],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("a line")).expect("JSON line");
    assert!(line["label"].is_string(), "{line}");
}

#[test]
fn it_fails_clearly_when_offline_and_not_cached() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = calltype(
        &["predict", "--model", "org/absent", "hello"],
        &[("HF_HOME", home.path()), ("HF_HUB_OFFLINE", Path::new("1"))],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("org/absent")
            && err.contains("HF_HUB_OFFLINE")
            && err.contains("not in the cache"),
        "{err}"
    );
}

#[test]
fn it_fails_clearly_when_the_hub_cannot_be_reached() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = calltype(
        &["predict", "--model", "org/absent", "hello"],
        &[
            ("HF_HOME", home.path()),
            // Port 9 (discard) on loopback: nothing listens, the connection is refused.
            ("HF_ENDPOINT", Path::new("http://127.0.0.1:9")),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot download") && err.contains("org/absent"),
        "{err}"
    );
}

#[test]
fn it_says_a_missing_directory_is_not_a_model_id_either() {
    let out = calltype(&["predict", "--model", "./no/such/dir", "hello"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a directory"), "{err}");
}
