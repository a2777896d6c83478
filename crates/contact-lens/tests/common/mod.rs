//! Shared test helpers: where the shared fixtures live.

#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data directory (`../shared` beside the repository, or `$CALLTYPE_SHARED`).
///
/// Returns `None` (after printing a note) when it is missing, so a checkout without the data
/// still passes; with `CI=true` a missing directory is a failure.
pub fn shared_dir() -> Option<PathBuf> {
    testdata::shared("fixtures").map(|_| testdata::shared_root())
}

/// The bytes of `fixtures/contact-lens/<name>` in the shared directory.
pub fn fixture(shared: &std::path::Path, name: &str) -> Vec<u8> {
    let p = shared.join("fixtures/contact-lens").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The bytes of one of this crate's own fixtures (`tests/fixtures/<name>`).
pub fn local_fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// A text as a golden file holds it: its word count and a 64-bit FNV-1a digest, so the golden
/// files check every character without holding the fixtures' text (which is ../shared's, and
/// is never copied into the repository).
pub fn digest(text: &str) -> String {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{} words, fnv1a {h:016x}", text.split_whitespace().count())
}

/// A contact as a golden file holds it: every serialised field, each turn with its text, and
/// the three transcripts; texts as [`digest`]s.
pub fn golden_summary(c: &contact_lens::Contact) -> serde_json::Value {
    use contact_lens::Participants;
    let mut v = serde_json::to_value(c).expect("a Contact serialises");
    if let Some(summary) = &c.summary {
        v["summary"] = digest(summary).into();
    }
    v["turns"] = c
        .turns
        .iter()
        .map(|t| {
            serde_json::json!({
                "role": t.role,
                "begin_ms": t.begin_ms,
                "end_ms": t.end_ms,
                "text": digest(c.text(t)),
            })
        })
        .collect();
    v["transcript"] = serde_json::json!({
        "all": digest(&c.transcript(Participants::All)),
        "customer": digest(&c.transcript(Participants::Customer)),
        "agent": digest(&c.transcript(Participants::Agent)),
    });
    v
}

/// `v` with every object's keys in sorted order, whether or not serde_json's `preserve_order`
/// is on (a workspace build turns it on for everyone; `-p contact-lens` does not).
fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Compares `c` with `tests/fixtures/golden/<name>.json` exactly; `UPDATE_GOLDEN=1` rewrites
/// the file instead (review the diff before committing it).
pub fn check_golden(name: &str, c: &contact_lens::Contact) {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/golden"
    ))
    .join(format!("{name}.json"));
    let actual = serde_json::to_string_pretty(&sorted(golden_summary(c))).expect("JSON") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).expect("creating the golden folder");
        std::fs::write(&path, &actual)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {} ({e}); UPDATE_GOLDEN=1 writes it",
            path.display()
        )
    });
    if actual != expected {
        let (n, (e, a)) = expected
            .lines()
            .chain(std::iter::repeat("<end>"))
            .zip(actual.lines().chain(std::iter::repeat("<end>")))
            .enumerate()
            .find(|(_, (e, a))| e != a)
            .expect("texts that differ differ in a line");
        panic!(
            "{name}: the contact differs from {} at line {}:\n  expected {e}\n  actual   {a}\n\
             UPDATE_GOLDEN=1 rewrites it (review the diff).",
            path.display(),
            n + 1
        );
    }
}

/// What every parsed contact must satisfy: one-line transcripts, turns in order of start, and
/// no `SYSTEM` turns unless asked for.
pub fn check_invariants(c: &contact_lens::Contact, with_system: bool) {
    use contact_lens::{Participants, Role};
    for who in [
        Participants::All,
        Participants::Customer,
        Participants::Agent,
    ] {
        assert!(!c.transcript(who).contains('\n'), "{who}: not one line");
    }
    let begins: Vec<Option<u64>> = c.turns.iter().map(|t| t.begin_ms).collect();
    if begins.iter().all(Option::is_some) {
        assert!(begins.windows(2).all(|w| w[0] <= w[1]), "{begins:?}");
    }
    if !with_system {
        assert!(c.turns.iter().all(|t| t.role != Role::System));
    }
}
