//! Athena reads every byte of our CSV as DuckDB and the `csv` crate do.
//!
//! Athena's tables (`infra/template.yaml`) use `org.apache.hadoop.hive.serde2.OpenCSVSerde`,
//! which parses each line with opencsv 2.3's `CSVParser`; DuckDB (`make demo`,
//! `infra/athena/duckdb-local.sql`) and our own readers parse RFC 4180. [`OpenCsv`] below is a
//! test-only transcription of opencsv 2.3's `CSVParser.parseLine` (commit 7625018, "set
//! version to 2.3", of the opencsv SourceForge history) as Hive's `OpenCSVSerde.newReader`
//! and `CSVReader.readNext` drive it, configured from the template's SERDEPROPERTIES. Tricky
//! transcripts must come back field for field from both parsers.

use master_csv::encode::{encode_record, encode_rows, header};
use master_csv::{Row, COLUMNS};

/// opencsv 2.3 `CSVParser` with the options `CSVReader(reader, separator, quote, escape)`
/// gives it: `strictQuotes` false, `ignoreLeadingWhiteSpace` true.
struct OpenCsv {
    separator: char,
    quote: char,
    escape: char,
}

impl OpenCsv {
    /// Hive's `OpenCSVSerde`: each property is its value's first character, and
    /// `newReader` replaces an escape equal to `CSVWriter.DEFAULT_ESCAPE_CHARACTER` (`"`)
    /// with `CSVParser.DEFAULT_ESCAPE_CHARACTER` (`\`). Defaults: `,`, `"`, `"` (so `\`).
    fn from_serde_properties(
        separator: Option<&str>,
        quote: Option<&str>,
        escape: Option<&str>,
    ) -> Self {
        let first = |v: Option<&str>, def: char| v.and_then(|s| s.chars().next()).unwrap_or(def);
        let mut escape = first(escape, '"');
        if escape == '"' {
            escape = '\\';
        }
        Self {
            separator: first(separator, ','),
            quote: first(quote, '"'),
            escape,
        }
    }

    /// `CSVReader.readNext` over one line (Hive hands the SerDe one line at a time): the fields
    /// of `parseLineMulti`; a quoted field still open at the end of the line is pending and
    /// never returned, so it and every later column read as NULL.
    fn read_line(&self, line: &str) -> Vec<String> {
        let c: Vec<char> = line.chars().collect();
        let mut tokens = Vec::new();
        let mut sb = String::new();
        let mut in_quotes = false;
        let mut in_field = false;
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            if ch == self.escape {
                // isNextCharacterEscapable: in quotes (or a field), followed by quote or escape.
                if (in_quotes || in_field)
                    && i + 1 < c.len()
                    && (c[i + 1] == self.quote || c[i + 1] == self.escape)
                {
                    sb.push(c[i + 1]);
                    i += 1;
                }
                // Otherwise the escape character is dropped.
            } else if ch == self.quote {
                // isNextCharacterEscapedQuote.
                if (in_quotes || in_field) && i + 1 < c.len() && c[i + 1] == self.quote {
                    sb.push(c[i + 1]);
                    i += 1;
                } else {
                    // The embedded quote in the middle of a field (a,bc"d"ef,g), not strict.
                    if i > 2
                        && c[i - 1] != self.separator
                        && c.len() > i + 1
                        && c[i + 1] != self.separator
                    {
                        if !sb.is_empty() && sb.chars().all(char::is_whitespace) {
                            sb.clear();
                        } else {
                            sb.push(ch);
                        }
                    }
                    in_quotes = !in_quotes;
                }
                in_field = !in_field;
            } else if ch == self.separator && !in_quotes {
                tokens.push(std::mem::take(&mut sb));
                in_field = false;
            } else {
                sb.push(ch);
                in_field = true;
            }
            i += 1;
        }
        if !in_quotes {
            tokens.push(sb);
        }
        tokens
    }
}

/// The SERDEPROPERTIES of each `OpenCSVSerde` table in the template, as strings.
fn template_serdes() -> Vec<(Option<String>, Option<String>, Option<String>)> {
    let path = testdata::repo("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.contains("SerializationLibrary: org.apache.hadoop.hive.serde2.OpenCSVSerde") {
            continue;
        }
        let (mut sep, mut quote, mut esc) = (None, None, None);
        let indent = |l: &str| l.len() - l.trim_start().len();
        let base = indent(line);
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() || indent(next) < base {
                break;
            }
            let next = lines.next().unwrap().trim();
            if let Some((k, v)) = next.split_once(':') {
                let v = Some(yaml_scalar(v.trim()));
                match k {
                    "separatorChar" => sep = v,
                    "quoteChar" => quote = v,
                    "escapeChar" => esc = v,
                    _ => {}
                }
            }
        }
        out.push((sep, quote, esc));
    }
    out
}

/// A YAML flow scalar: plain, 'single-quoted' or "double-quoted" (with the escapes a
/// SerDe property needs: `\\`, `\"`, `\0`, `\t`, `\n`, `\xNN`, `\uNNNN`).
fn yaml_scalar(v: &str) -> String {
    if let Some(s) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return s.replace("''", "'");
    }
    let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |it: &mut std::str::Chars, n: usize| {
            let h: String = it.by_ref().take(n).collect();
            char::from_u32(u32::from_str_radix(&h, 16).unwrap()).unwrap()
        };
        match it.next().unwrap() {
            '0' => out.push('\0'),
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'x' => out.push(hex(&mut it, 2)),
            'u' => out.push(hex(&mut it, 4)),
            other => out.push(other),
        }
    }
    out
}

/// Transcripts that have broken CSV readers.
const TRICKY: &[&str] = &[
    r"CUSTOMER: my files are in C:\Users\me\bills",
    r"AGENT: the path ends in a backslash \",
    r"\",
    r"\\",
    r#"\""#,
    r#"CUSTOMER: he said "cancel it", then \"no\""#,
    r#""starts with a quote"#,
    r#"ends with a quote""#,
    "commas, everywhere,,",
    "  leading spaces, and \"quotes\" after them",
    "ünïcödé — 日本語のテキスト, emoji 😀, and a tab\there",
    "",
    "x\"",
    "a,\"b",
];

fn row(i: usize, transcript: &str) -> Row {
    Row {
        contact_id: format!("c-{i}"),
        contact_date: "2026-11-20".into(),
        channel: "VOICE".into(),
        redacted: true,
        language: "en-US".into(),
        version: "1.1.0".into(),
        duration_ms: Some(1000),
        turns: 2,
        sentiment_customer: Some(-0.5),
        sentiment_agent: None,
        categories: r"billing|C:\escalation".into(),
        summary: format!("summary {transcript}"),
        transcript: transcript.into(),
        source_key: format!("Analysis/Voice/Redacted/2026/11/20/c-{i}_analysis_redacted_x.json"),
        instance_id: r"inst\".into(),
        ingested_at: "2026-11-20T10:00:00Z".into(),
    }
}

/// The fields `encode_rows` wrote for `r`, in column order.
fn fields(r: &Row) -> Vec<String> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    vec![
        r.contact_id.clone(),
        r.contact_date.clone(),
        r.channel.clone(),
        r.redacted.to_string(),
        r.language.clone(),
        r.version.clone(),
        opt(r.duration_ms.map(|v| v.to_string())),
        r.turns.to_string(),
        opt(r.sentiment_customer.map(|v| v.to_string())),
        opt(r.sentiment_agent.map(|v| v.to_string())),
        r.categories.clone(),
        r.summary.clone(),
        r.transcript.clone(),
        r.source_key.clone(),
        r.instance_id.clone(),
        r.ingested_at.clone(),
    ]
}

/// RFC 4180 as DuckDB reads our files (`read_csv` defaults: quote and escape `"`).
fn rfc4180(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn it_reads_every_field_of_tricky_transcripts_the_same_in_athena_and_duckdb() {
    let serdes = template_serdes();
    assert_eq!(serdes.len(), 2, "the labeled and transcripts tables");
    let rows: Vec<Row> = TRICKY.iter().enumerate().map(|(i, t)| row(i, t)).collect();
    let mut file = header();
    file.extend(encode_rows(&rows));
    // Labeled parts are written record by record with `encode_record`.
    let labeled: Vec<Vec<String>> = TRICKY
        .iter()
        .map(|t| vec!["c".into(), (*t).into(), r"key\".into(), format!("{t}{t}")])
        .collect();
    let mut part = Vec::new();
    for f in &labeled {
        part.extend(encode_record(f.iter().map(String::as_str)));
    }

    let text = String::from_utf8(file.clone()).unwrap();
    let part_text = String::from_utf8(part.clone()).unwrap();
    let want: Vec<Vec<String>> = std::iter::once(COLUMNS.iter().map(|c| c.to_string()).collect())
        .chain(rows.iter().map(fields))
        .collect();
    assert_eq!(rfc4180(&file), want, "RFC 4180 (DuckDB) reads the master");
    assert_eq!(
        rfc4180(&part),
        labeled,
        "RFC 4180 (DuckDB) reads a labeled part"
    );

    for (sep, quote, esc) in serdes {
        let athena =
            OpenCsv::from_serde_properties(sep.as_deref(), quote.as_deref(), esc.as_deref());
        // Hive's line reader splits records at line ends; no field holds one.
        let got: Vec<Vec<String>> = text.lines().map(|l| athena.read_line(l)).collect();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "OpenCSVSerde (escapeChar {esc:?}) reads a master row");
        }
        assert_eq!(got.len(), want.len());
        let got: Vec<Vec<String>> = part_text.lines().map(|l| athena.read_line(l)).collect();
        assert_eq!(
            got, labeled,
            "OpenCSVSerde (escapeChar {esc:?}) reads a labeled part"
        );
    }
}

#[test]
fn the_reference_parser_is_opencsv_with_a_backslash_escape() {
    // What Athena made of our files with the old table (escapeChar `\`), as seen there: a
    // lone backslash is dropped, and a quoted field ending in `\` swallows the rest of the row.
    let p = OpenCsv::from_serde_properties(None, None, Some("\\"));
    assert_eq!(p.read_line(r"a,C:\Users,b"), ["a", "C:Users", "b"]);
    assert_eq!(p.read_line(r#"a,"x, \",b,c"#), ["a"]);
    assert_eq!(
        p.read_line(r#"a,"say ""hi""",b"#),
        ["a", r#"say "hi""#, "b"]
    );
    // Hive swaps an escapeChar of `"` for `\`: that setting cannot turn escaping off.
    let p = OpenCsv::from_serde_properties(None, None, Some("\""));
    assert_eq!(p.escape, '\\');
}
