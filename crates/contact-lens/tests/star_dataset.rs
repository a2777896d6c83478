//! The STAR-derived documents in `../shared/datasets/star-contactlens/` (Version 1.1.0).

mod common;

use std::collections::HashMap;
use std::path::Path;

use contact_lens::{parse, Channel, Participants, Role};

struct Row {
    n_turns: usize,
    duration_ms: u64,
    file: String,
}

fn manifest(dir: &Path) -> HashMap<String, Row> {
    let text = std::fs::read_to_string(dir.join("manifest.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("contact_id,split,source,source_id,flow,subflow,n_turns,duration_ms,file")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                Row {
                    n_turns: f[6].parse().unwrap(),
                    duration_ms: f[7].parse().unwrap(),
                    file: f[8].to_string(),
                },
            )
        })
        .collect()
}

fn check_split(split: &str) -> usize {
    let Some(shared) = common::shared_dir() else {
        return 0;
    };
    let dir = shared.join("datasets/star-contactlens");
    let rows = manifest(&dir);
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(dir.join(split))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap();
        let key = format!("{split}/{name}");
        let bytes = std::fs::read(&path).unwrap();
        let c = parse(&bytes, Some(&key)).unwrap_or_else(|e| panic!("{key}: {}", e.reason()));
        let row = rows
            .get(&c.contact_id)
            .unwrap_or_else(|| panic!("{key}: not in manifest"));
        assert_eq!(row.file, key);
        assert!(name.starts_with(&c.contact_id), "{key}");
        assert_eq!(c.version, "1.1.0", "{key}");
        assert_eq!(c.channel, Channel::Voice, "{key}");
        assert!(!c.redacted, "{key}");
        assert_eq!(c.turns.len(), row.n_turns, "{key}");
        assert_eq!(c.duration_ms, Some(row.duration_ms), "{key}");
        assert!(c.contact_date.is_some(), "{key}");
        assert!(
            c.turns
                .iter()
                .all(|t| matches!(t.role, Role::Agent | Role::Customer)),
            "{key}"
        );
        let all = c.transcript(Participants::All);
        assert!(
            all.starts_with("AGENT: ") || all.starts_with("CUSTOMER: "),
            "{key}"
        );
        assert!(!all.contains(['\n', '\r', '\t']), "{key}");
        n += 1;
    }
    n
}

#[test]
fn every_dev_file_parses_and_matches_the_manifest() {
    let n = check_split("dev");
    if n > 0 {
        assert_eq!(n, 616);
    }
}

#[test]
fn every_train_file_parses_and_matches_the_manifest() {
    let n = check_split("train");
    if n > 0 {
        assert_eq!(n, 2879);
    }
}

#[test]
fn one_dev_file_in_detail() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let key = "dev/0054c7db-0036-5335-91fa-0f4d66d0e4d8_analysis_2024-01-02T07_13_38Z.json";
    let bytes = std::fs::read(shared.join("datasets/star-contactlens").join(key)).unwrap();
    let c = parse(&bytes, Some(key)).unwrap();
    assert_eq!(c.contact_id, "0054c7db-0036-5335-91fa-0f4d66d0e4d8");
    assert_eq!(
        c.instance_id.as_deref(),
        Some("52c4b956-be8c-5e73-a541-b3889bcde7c2")
    );
    assert_eq!(c.language.as_deref(), Some("en-US"));
    assert_eq!(c.contact_date, chrono::NaiveDate::from_ymd_opt(2024, 1, 2));
    assert_eq!(c.duration_ms, Some(85962));
    assert_eq!(c.turns.len(), 16);
    assert_eq!(c.sentiment_agent, Some(0.0));
    assert!(c
        .transcript(Participants::All)
        .starts_with("CUSTOMER: hello can you help me?"));
}
