//! Athena-safe CSV: one header per object, RFC 4180 quoting, UTF-8, and no CR or LF inside
//! a field (OpenCSVSerde splits records on them whatever the quoting).

use std::collections::HashSet;

use crate::row::{Identity, Row, COLUMNS, CONTACT_ID_COL, REDACTED_COL};

/// The header line, with its line feed.
pub fn header() -> Vec<u8> {
    encode_record(COLUMNS.iter().copied())
}

/// Encodes rows as CSV records without a header.
pub fn encode_rows(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(|r| r.transcript.len() + 256).sum());
    for row in rows {
        out.extend_from_slice(&encode_row(row));
    }
    out
}

fn encode_row(row: &Row) -> Vec<u8> {
    let opt_u = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let opt_f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let duration = opt_u(row.duration_ms);
    let turns = row.turns.to_string();
    let sc = opt_f(row.sentiment_customer);
    let sa = opt_f(row.sentiment_agent);
    encode_record([
        row.contact_id.as_str(),
        row.contact_date.as_str(),
        row.channel.as_str(),
        if row.redacted { "true" } else { "false" },
        row.language.as_str(),
        row.version.as_str(),
        duration.as_str(),
        turns.as_str(),
        sc.as_str(),
        sa.as_str(),
        row.categories.as_str(),
        row.summary.as_str(),
        row.transcript.as_str(),
        row.source_key.as_str(),
        row.instance_id.as_str(),
        row.ingested_at.as_str(),
    ])
}

/// One record with RFC 4180 quoting; CR and LF inside fields become spaces.
pub fn encode_record<'a>(fields: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    let cleaned: Vec<std::borrow::Cow<'a, str>> = fields
        .into_iter()
        .map(|f| {
            if f.contains(['\r', '\n']) {
                std::borrow::Cow::Owned(f.replace(['\r', '\n'], " "))
            } else {
                std::borrow::Cow::Borrowed(f)
            }
        })
        .collect();
    w.write_record(cleaned.iter().map(|c| c.as_ref()))
        .expect("writing to a Vec cannot fail");
    w.into_inner().expect("writing to a Vec cannot fail")
}

/// Reads the identities of the records in `bytes`: a whole master object (with its header)
/// when `has_header`, or a tail of one that starts at a record boundary.
pub fn identities(bytes: &[u8], has_header: bool) -> Result<HashSet<Identity>, csv::Error> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(true)
        .from_reader(bytes);
    let mut out = HashSet::new();
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec)? {
        let (Some(id), Some(red)) = (rec.get(CONTACT_ID_COL), rec.get(REDACTED_COL)) else {
            continue;
        };
        out.insert(Identity {
            contact_id: String::from_utf8_lossy(id).into_owned(),
            redacted: red == b"true",
        });
    }
    Ok(out)
}

/// Reads rows back (for tests, the CLI and the classify side).
pub fn decode_rows(bytes: &[u8]) -> Result<Vec<Row>, csv::Error> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    r.deserialize().collect()
}
