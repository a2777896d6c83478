//! Embedded mode's cold start: the `model.tar.gz` that `calltype package` writes, read through
//! the object-store port, unpacked and loaded, labels as the directory it came from; bad
//! artifacts fail with one line that says why.

use std::io::Write;
use std::path::Path;

use classify::embedded::{load_model, MODEL_FILES};
use classify::{Classifier, EmbeddedError, ModelClassifier, ModelSource};
use flate2::write::GzEncoder;
use store::{Condition, LocalStore, ObjectStore};

/// A tar.gz of `files` (name, bytes) at the archive root.
fn archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, body.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Every file of a model directory, as archive entries.
fn model_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn s3(key: &str) -> ModelSource {
    ModelSource::S3 {
        bucket: "artifacts".into(),
        key: key.into(),
    }
}

/// Stores `body` under `key` and runs the cold start on it.
async fn cold_start(body: Vec<u8>, key: &str) -> Result<ModelClassifier, EmbeddedError> {
    let bucket = tempfile::tempdir().unwrap();
    let store = LocalStore::new(bucket.path()).unwrap();
    store.put(key, body, Condition::None).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    load_model(&s3(key), Some(&store), &tmp.path().join("model")).await
}

#[tokio::test]
async fn a_packaged_model_read_from_the_store_labels_as_its_directory() {
    let Some(dir) = testdata::shared("parity/tiny-bert") else {
        return;
    };
    let files = model_files(&dir);
    let entries: Vec<(&str, Vec<u8>)> =
        files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let from_s3 = cold_start(archive(&entries), "models/tiny-v1/model.tar.gz")
        .await
        .expect("the archive loads");
    assert_eq!(from_s3.name(), "tiny-v1", "named for the archive's folder");
    let from_dir = load_model::<LocalStore>(&ModelSource::Dir(dir.clone()), None, Path::new("/x"))
        .await
        .unwrap();
    assert_eq!(from_dir.name(), "tiny-bert");
    assert_eq!(from_s3.labels(), from_dir.labels());

    let texts: Vec<String> = [
        "I was billed twice this month",
        "please cancel my plan",
        "my card was declined",
        "",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    let a = from_s3.classify(&texts).await.unwrap();
    let b = from_dir.classify(&texts).await.unwrap();
    assert_eq!(a, b, "the same model, wherever it was read from");
    for l in &a {
        let scores = l.scores.as_ref().unwrap();
        assert_eq!(scores.len(), from_dir.labels().len());
        let sum: f32 = scores.iter().map(|(_, s)| s).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
    }
}

/// Asserts the cold start fails, on one line, with a message holding `says`.
async fn refused(body: Vec<u8>, says: &str) {
    let err = cold_start(body, "m/model.tar.gz")
        .await
        .err()
        .expect("a bad artifact must fail the cold start")
        .to_string();
    assert!(!err.contains('\n'), "one line: {err:?}");
    assert!(err.contains("s3://artifacts/m/model.tar.gz"), "{err}");
    assert!(err.contains(says), "{err:?} should say {says:?}");
}

#[tokio::test]
async fn bad_artifacts_fail_the_cold_start_with_one_line() {
    let Some(dir) = testdata::shared("parity/tiny-bert") else {
        return;
    };
    let files = model_files(&dir);
    let without = |skip: &str| -> Vec<(&str, Vec<u8>)> {
        files
            .iter()
            .filter(|(n, _)| n != skip)
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect()
    };
    // Not gzip at all, and gzip of something that is not a tar archive.
    refused(b"PK\x03\x04 a zip file".to_vec(), "not gzip data").await;
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&[7u8; 2048]).unwrap();
    refused(gz.finish().unwrap(), "not a tar archive").await;
    refused(archive(&[]), "empty").await;
    // Each required file missing in turn.
    for f in MODEL_FILES {
        refused(archive(&without(f)), &format!("has no {f}")).await;
    }
    // The files are there but config.json does not describe a classifier.
    let mut broken = without("config.json");
    broken.push(("config.json", br#"{"model_type": "gpt2"}"#.to_vec()));
    refused(
        archive(&broken),
        "is not a calltype or Hugging Face classifier",
    )
    .await;
    // A path that would leave the model directory.
    let mut escaping = without("vocab.txt");
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, body) in escaping.drain(..) {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, body.as_slice()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    // `append_data` refuses `..`; write the name into the header by hand as an attacker would.
    h.as_old_mut().name[..12].copy_from_slice(b"../evil.json");
    h.set_cksum();
    tar.append(&h, &b"{}\n"[..]).unwrap();
    refused(
        tar.into_inner().unwrap().finish().unwrap(),
        "leaves the model directory",
    )
    .await;
}

#[tokio::test]
async fn a_missing_artifact_or_directory_says_so() {
    let bucket = tempfile::tempdir().unwrap();
    let store = LocalStore::new(bucket.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let err = load_model(&s3("nope/model.tar.gz"), Some(&store), tmp.path())
        .await
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "cannot read the model artifact s3://artifacts/nope/model.tar.gz: no such object"
    );
    let err =
        load_model::<LocalStore>(&ModelSource::Dir(tmp.path().join("none")), None, tmp.path())
            .await
            .err()
            .unwrap()
            .to_string();
    assert!(err.ends_with("it has no config.json"), "{err}");
}

/// The Lambda binary itself: with a model that cannot load, it exits at init with the reason,
/// before it ever asks the Runtime API for an event.
#[test]
fn the_lambda_fails_its_cold_start_not_its_first_invocation() {
    let bucket = tempfile::tempdir().unwrap();
    let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    api.set_nonblocking(true).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_classify"))
        .env_clear()
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            api.local_addr().unwrap().to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "classify")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CALLTYPE_BUCKET", "b")
        .env("CALLTYPE_LOCAL_DIR", bucket.path())
        .env("CALLTYPE_MODE", "embedded")
        .env("CALLTYPE_MODEL_DIR", bucket.path().join("no-model"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A function that got past its init would wait on the Runtime API for ever.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the function did not fail its init: it is waiting for events");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "it started: {stderr}");
    assert!(
        stderr.contains("has no config.json"),
        "the reason is missing: {stderr}"
    );
    assert!(
        api.accept().is_err(),
        "it asked for an event before its model loaded"
    );
}
