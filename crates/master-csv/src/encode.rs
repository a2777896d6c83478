//! Athena-safe CSV: one header per object, RFC 4180 quoting, UTF-8, and no CR or LF inside
//! a field (OpenCSVSerde splits records on them whatever the quoting).

use std::collections::HashMap;

use crate::row::{Row, COLUMNS, CONTACT_ID_COL, REDACTED_COL, SOURCE_KEY_COL};

/// The header line, with its line feed.
pub fn header() -> Vec<u8> {
    encode_record(COLUMNS.iter().copied())
}

/// Encodes rows as CSV records without a header.
pub fn encode_rows(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(|r| r.transcript.len() + 256).sum());
    {
        let mut w = writer(&mut out);
        for row in rows {
            write_row(&mut w, row);
        }
        w.flush().expect("writing to a Vec cannot fail");
    }
    out
}

/// A CSV writer with our dialect (RFC 4180 quoting where needed, LF terminators) and a
/// small buffer: it writes into memory, and the default 8 KiB buffer is zeroed per writer.
fn writer<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .buffer_capacity(1024)
        .from_writer(out)
}

fn write_row<W: std::io::Write>(w: &mut csv::Writer<W>, row: &Row) {
    let opt_u = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let opt_f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let duration = opt_u(row.duration_ms);
    let turns = row.turns.to_string();
    let sc = opt_f(row.sentiment_customer);
    let sa = opt_f(row.sentiment_agent);
    write_record(
        w,
        [
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
        ],
    );
}

/// One record with RFC 4180 quoting; CR and LF inside fields become spaces.
pub fn encode_record<'a>(fields: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = writer(&mut out);
        write_record(&mut w, fields);
        w.flush().expect("writing to a Vec cannot fail");
    }
    out
}

fn write_record<'a, W: std::io::Write>(
    w: &mut csv::Writer<W>,
    fields: impl IntoIterator<Item = &'a str>,
) {
    for f in fields {
        // A SIMD byte search, not a char search: CR and LF are ASCII.
        if memchr::memchr2(b'\r', b'\n', f.as_bytes()).is_some() {
            w.write_field(f.replace(['\r', '\n'], " "))
        } else {
            w.write_field(f)
        }
        .expect("writing to a Vec cannot fail");
    }
    w.write_record(None::<&[u8]>)
        .expect("writing to a Vec cannot fail");
}

/// What a master already holds for one contact: the row its first analysis became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    /// The analysis file the row was read from (`source_key`).
    pub source_key: String,
    /// Which copy that file was.
    pub redacted: bool,
}

/// Reads the contacts of the records in `bytes`: a whole master object (with its header)
/// when `has_header`, or a tail of one that starts at a record boundary. A contact with more
/// than one row (masters written before one row per contact) keeps its first.
pub fn present_contacts(
    bytes: &[u8],
    has_header: bool,
) -> Result<HashMap<String, Present>, csv::Error> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(true)
        .from_reader(bytes);
    let mut out = HashMap::new();
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec)? {
        let (Some(id), Some(red)) = (rec.get(CONTACT_ID_COL), rec.get(REDACTED_COL)) else {
            continue;
        };
        let source_key = rec.get(SOURCE_KEY_COL).unwrap_or_default();
        out.entry(String::from_utf8_lossy(id).into_owned())
            .or_insert_with(|| Present {
                source_key: String::from_utf8_lossy(source_key).into_owned(),
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
