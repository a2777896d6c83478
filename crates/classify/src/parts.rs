//! Labeled parts: the master columns a part needs ([`LabeledRow`], read by [`parse_rows`]),
//! the part's name ([`part_key`]) and its bytes ([`encode_part`], columns [`LABELED_COLUMNS`]).
//! A part holds the labels of one claimed byte range of a master and is written once.

use chrono::{SecondsFormat, Utc};
use master_csv::encode::encode_record;
use master_csv::{Layout, COLUMNS};

use crate::Label;

/// The labeled parts' columns, in order (`transcript` only when configured). This list is
/// the contract with Athena: columns are only ever added at the end.
pub const LABELED_COLUMNS: &[&str] = &[
    "contact_id",
    "contact_date",
    "channel",
    "redacted",
    "source_key",
    "label",
    "score",
    "model",
    "labeled_at",
];

/// The optional last column of labeled parts.
pub const TRANSCRIPT_COLUMN: &str = "transcript";

/// The prefix of the labeled parts of one partition ([`Layout::labeled_prefix`]).
pub fn labeled_prefix(layout: &Layout, date: &str) -> String {
    layout.labeled_prefix(date)
}

/// The labeled part of master bytes `[from, to)` ([`Layout::part`]).
pub fn part_key(layout: &Layout, date: &str, from: u64, to: u64) -> String {
    layout.part(date, from, to)
}

/// The master columns a labeled part needs.
#[derive(Debug, Clone)]
pub(crate) struct LabeledRow {
    pub(crate) contact_id: String,
    pub(crate) contact_date: String,
    pub(crate) channel: String,
    pub(crate) redacted: String,
    pub(crate) source_key: String,
    pub(crate) transcript: String,
}

pub(crate) struct ParsedRows {
    pub(crate) rows: Vec<LabeledRow>,
    pub(crate) read: u64,
    pub(crate) skipped: u64,
}

fn column(name: &str) -> usize {
    COLUMNS
        .iter()
        .position(|c| *c == name)
        .expect("a master-csv column")
}

/// Reads complete master records (`has_header`: the range starts at byte 0).
pub(crate) fn parse_rows(bytes: &[u8], has_header: bool) -> Result<ParsedRows, String> {
    let idx = [
        column("contact_id"),
        column("contact_date"),
        column("channel"),
        column("redacted"),
        column("source_key"),
        column("transcript"),
    ];
    let need = idx.iter().max().copied().unwrap_or(0);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(true)
        .from_reader(bytes);
    let mut out = ParsedRows {
        rows: Vec::new(),
        read: 0,
        skipped: 0,
    };
    let mut rec = csv::StringRecord::new();
    while r.read_record(&mut rec).map_err(|e| e.to_string())? {
        out.read += 1;
        if rec.len() <= need {
            out.skipped += 1;
            tracing::warn!(
                line = rec.position().map(|p| p.line()).unwrap_or(0),
                fields = rec.len(),
                "master record has too few fields; skipped"
            );
            continue;
        }
        let f = |i: usize| rec.get(i).unwrap_or_default().to_string();
        let row = LabeledRow {
            contact_id: f(idx[0]),
            contact_date: f(idx[1]),
            channel: f(idx[2]),
            redacted: f(idx[3]),
            source_key: f(idx[4]),
            transcript: f(idx[5]),
        };
        if row.transcript.trim().is_empty() {
            out.skipped += 1;
            continue;
        }
        out.rows.push(row);
    }
    Ok(out)
}

/// The labeled part: one header, then one record per row.
pub(crate) fn encode_part(
    rows: &[LabeledRow],
    labels: &[Label],
    model: &str,
    with_transcript: bool,
) -> Vec<u8> {
    let mut header: Vec<&str> = LABELED_COLUMNS.to_vec();
    if with_transcript {
        header.push(TRANSCRIPT_COLUMN);
    }
    let mut out = encode_record(header);
    let labeled_at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    for (row, l) in rows.iter().zip(labels) {
        let score = l.score.to_string();
        let mut fields = vec![
            row.contact_id.as_str(),
            row.contact_date.as_str(),
            row.channel.as_str(),
            row.redacted.as_str(),
            row.source_key.as_str(),
            l.label.as_str(),
            score.as_str(),
            model,
            labeled_at.as_str(),
        ];
        if with_transcript {
            fields.push(row.transcript.as_str());
        }
        out.extend_from_slice(&encode_record(fields));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watermark_key;

    #[test]
    fn part_names_sort_by_offset() {
        let l = Layout::default();
        let a = part_key(&l, "2026-01-02", 9, 100);
        let b = part_key(&l, "2026-01-02", 100, 1000);
        assert!(a < b);
        assert_eq!(
            a,
            "calltype/labeled/date=2026-01-02/part-00000000000000000009-00000000000000000100.csv"
        );
        assert_eq!(
            watermark_key(&l, "2026-01-02"),
            "calltype/state/classify/date=2026-01-02/watermark.json"
        );
    }

    #[test]
    fn rows_skip_empty_transcripts_and_short_records() {
        let mut bytes = master_csv::encode::header();
        let mut full = vec!["c1", "2026-01-02", "VOICE", "true"];
        full.extend(std::iter::repeat_n("", COLUMNS.len() - 4));
        full[column("transcript")] = "hello there";
        full[column("source_key")] = "k1";
        bytes.extend(encode_record(full.clone()));
        full[column("transcript")] = "  ";
        bytes.extend(encode_record(full));
        bytes.extend(encode_record(["short", "row"]));
        let p = parse_rows(&bytes, true).unwrap();
        assert_eq!((p.read, p.skipped, p.rows.len()), (3, 2, 1));
        assert_eq!(p.rows[0].source_key, "k1");
        assert_eq!(p.rows[0].transcript, "hello there");
    }

    #[test]
    fn parts_have_one_header_and_the_transcript_only_when_asked() {
        let row = LabeledRow {
            contact_id: "c".into(),
            contact_date: "2026-01-02".into(),
            channel: "VOICE".into(),
            redacted: "true".into(),
            source_key: "k".into(),
            transcript: "a, \"b\"".into(),
        };
        let label = Label {
            label: "billing".into(),
            score: 0.5,
            scores: None,
        };
        let plain = String::from_utf8(encode_part(
            std::slice::from_ref(&row),
            std::slice::from_ref(&label),
            "m",
            false,
        ))
        .unwrap();
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines[0], LABELED_COLUMNS.join(","));
        assert!(lines[1].starts_with("c,2026-01-02,VOICE,true,k,billing,0.5,m,"));
        let with = String::from_utf8(encode_part(&[row], &[label], "m", true)).unwrap();
        assert!(with.lines().next().unwrap().ends_with(",transcript"));
        assert!(with.lines().nth(1).unwrap().ends_with(",\"a, \"\"b\"\"\""));
    }
}
