//! The Hugging Face inference-toolkit wire format, as pure functions: media types, request
//! records and answers. No I/O and no model here; [`crate::router`] glues them to HTTP.
//!
//! A request record is `{"inputs": "text" | ["text", ...], "parameters": {...}}`. Answers
//! follow the `transformers` text-classification pipeline exactly:
//!
//! | parameters | `"inputs": "a"` | `"inputs": ["a", "b"]` |
//! |---|---|---|
//! | none | `[{"label","score"}]` | `[{..}, {..}]` |
//! | `"return_all_scores": true` | `[[all labels, label order]]` | `[[..], [..]]` |
//! | `"top_k": n` | `[best n, by score]` | `[[best n], [best n]]` |
//! | `"top_k": null` | `[all labels, by score]` | `[[..], [..]]` |
//!
//! `top_k` (even `null`) wins over `return_all_scores`, as in the pipeline. Other parameters
//! the pipeline takes for tokenization (`truncation`, `max_length`, `padding`) are ignored:
//! the model's own long-call strategy applies. `function_to_apply` may only be `softmax` or
//! `default`, since the model is single-label.

use serde::Serialize;
use serde_json::{Map, Value};

/// A body encoding: the request's `Content-Type` or the answer's, from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: one record in, one answer out.
    Json,
    /// `application/jsonlines`: one record per line in, one answer per line out, in order.
    JsonLines,
}

impl Format {
    /// The canonical media type written in `Content-Type`.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::JsonLines => "application/jsonlines",
        }
    }

    fn from_media_type(essence: &str) -> Option<Self> {
        match essence {
            "application/json" => Some(Format::Json),
            "application/jsonlines" | "application/x-jsonlines" | "application/jsonl" => {
                Some(Format::JsonLines)
            }
            _ => None,
        }
    }

    /// The format of a request body from its `Content-Type`; JSON when absent.
    pub fn from_content_type(header: Option<&str>) -> Result<Self, WireError> {
        let Some(header) = header else {
            return Ok(Format::Json);
        };
        let essence = essence(header);
        if essence.is_empty() {
            return Ok(Format::Json);
        }
        Self::from_media_type(&essence).ok_or_else(|| {
            WireError::UnsupportedMediaType(format!(
                "content type {essence:?} is not supported (use application/json or application/jsonlines)"
            ))
        })
    }

    /// The answer's format from `Accept`: the first supported media type listed, or `request`
    /// when the header is absent or names only wildcards.
    pub fn from_accept(header: Option<&str>, request: Format) -> Result<Self, WireError> {
        let Some(header) = header else {
            return Ok(request);
        };
        let mut wildcard = header.trim().is_empty();
        for item in header.split(',') {
            let essence = essence(item);
            if let Some(f) = Self::from_media_type(&essence) {
                return Ok(f);
            }
            wildcard |= essence == "*/*" || essence == "application/*" || essence.is_empty();
        }
        if wildcard {
            return Ok(request);
        }
        Err(WireError::NotAcceptable(format!(
            "accept {:?} is not supported (use application/json or application/jsonlines)",
            header.trim()
        )))
    }
}

/// The media type without parameters, lower case: `Application/JSON; charset=utf-8` → `application/json`.
fn essence(header: &str) -> String {
    header
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Why a request cannot be answered; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body is not a valid request (400).
    #[error("{0}")]
    BadRequest(String),
    /// `Content-Type` is neither JSON nor JSON Lines (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// `Accept` names nothing we can write (406).
    #[error("{0}")]
    NotAcceptable(String),
}

fn bad(reason: impl Into<String>) -> WireError {
    WireError::BadRequest(reason.into())
}

/// What the text inputs of one record look like; it decides the answer's nesting.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// `"inputs": "text"`.
    One(String),
    /// `"inputs": ["text", ...]` (possibly empty).
    Many(Vec<String>),
}

/// Which scores each input gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scores {
    /// The best label only (no `top_k`, `return_all_scores` absent or false).
    Best,
    /// All labels in label order (`return_all_scores: true`, the pipeline's legacy form).
    AllInLabelOrder,
    /// The `n` best labels by score, or all of them for `None` (`top_k`).
    TopK(Option<usize>),
}

/// One parsed request record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The texts.
    pub inputs: Inputs,
    /// The scores asked for.
    pub scores: Scores,
}

impl Record {
    /// The texts of this record, in order.
    pub fn texts(&self) -> Vec<&str> {
        match &self.inputs {
            Inputs::One(t) => vec![t.as_str()],
            Inputs::Many(ts) => ts.iter().map(String::as_str).collect(),
        }
    }
}

/// Parses a request body: one record for JSON, one per non-blank line for JSON Lines.
///
/// Reasons never quote the texts.
pub fn parse_body(body: &[u8], format: Format) -> Result<Vec<Record>, WireError> {
    let text = std::str::from_utf8(body).map_err(|e| bad(format!("body is not UTF-8: {e}")))?;
    match format {
        Format::Json => {
            if text.trim().is_empty() {
                return Err(bad("empty body: expected {\"inputs\": ...}"));
            }
            Ok(vec![parse_record(text)?])
        }
        Format::JsonLines => {
            let mut records = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                records.push(parse_record(line).map_err(|e| bad(format!("line {}: {e}", i + 1)))?);
            }
            if records.is_empty() {
                return Err(bad("empty body: expected one {\"inputs\": ...} per line"));
            }
            Ok(records)
        }
    }
}

/// Parses one `{"inputs": ..., "parameters": ...}` object.
pub fn parse_record(json: &str) -> Result<Record, WireError> {
    // serde_json's syntax errors name a position, never the content.
    let value: Value = serde_json::from_str(json).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(bad(format!(
            "expected a JSON object with \"inputs\", got {}",
            kind(&value)
        )));
    };
    let inputs = match obj.remove("inputs") {
        None => return Err(bad("missing \"inputs\"")),
        Some(Value::String(s)) => Inputs::One(s),
        Some(Value::Array(items)) => Inputs::Many(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    other => Err(bad(format!(
                        "\"inputs\"[{i}] must be a string, got {}",
                        kind(&other)
                    ))),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => {
            return Err(bad(format!(
                "\"inputs\" must be a string or a list of strings, got {}",
                kind(&other)
            )))
        }
    };
    let scores = match obj.remove("parameters") {
        None | Some(Value::Null) => Scores::Best,
        Some(Value::Object(params)) => parse_parameters(&params)?,
        Some(other) => {
            return Err(bad(format!(
                "\"parameters\" must be an object, got {}",
                kind(&other)
            )))
        }
    };
    Ok(Record { inputs, scores })
}

fn parse_parameters(params: &Map<String, Value>) -> Result<Scores, WireError> {
    match params.get("function_to_apply") {
        None | Some(Value::Null) => {}
        Some(Value::String(f))
            if matches!(f.to_ascii_lowercase().as_str(), "softmax" | "default") => {}
        Some(_) => return Err(bad(
            "\"function_to_apply\" must be \"softmax\" or \"default\" (the model is single-label)",
        )),
    }
    if let Some(top_k) = params.get("top_k") {
        return match top_k {
            Value::Null => Ok(Scores::TopK(None)),
            Value::Number(n) => n
                .as_u64()
                .map(|k| Scores::TopK(Some(usize::try_from(k).unwrap_or(usize::MAX))))
                .ok_or_else(|| bad("\"top_k\" must be a non-negative integer or null")),
            other => Err(bad(format!(
                "\"top_k\" must be a non-negative integer or null, got {}",
                kind(other)
            ))),
        };
    }
    match params.get("return_all_scores") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Scores::Best),
        Some(Value::Bool(true)) => Ok(Scores::AllInLabelOrder),
        Some(other) => Err(bad(format!(
            "\"return_all_scores\" must be a boolean, got {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// One `{"label", "score"}` element of an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelScore<'a> {
    /// The label.
    pub label: &'a str,
    /// Its probability.
    pub score: f32,
}

/// The scores of one input: the best label, or a list of labels with scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PerInput<'a> {
    /// `{"label", "score"}`.
    Best(LabelScore<'a>),
    /// `[{"label", "score"}, ...]`.
    List(Vec<LabelScore<'a>>),
}

/// The answer to one record, in the pipeline's shape (see the module doc). It serializes
/// f32 scores as such (`0.3`, not `0.30000001192092896`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer<'a> {
    /// One entry per input (or the legacy list around a single text's answer).
    PerInput(Vec<PerInput<'a>>),
    /// A single text's answer under `top_k`: its list of scores.
    Single(PerInput<'a>),
}

/// The answer to `record`, whose texts have the probabilities `scores` (in `labels` order).
pub fn answer<'a>(record: &Record, labels: &'a [String], scores: &[Vec<f32>]) -> Answer<'a> {
    let mut per_input: Vec<PerInput> = scores
        .iter()
        .map(|s| per_input(record.scores, labels, s))
        .collect();
    match (&record.inputs, record.scores) {
        // With `top_k` a single text's answer is its list of scores; the pipeline's legacy
        // forms wrap it in a list instead.
        (Inputs::One(_), Scores::TopK(_)) if per_input.len() == 1 => {
            Answer::Single(per_input.remove(0))
        }
        _ => Answer::PerInput(per_input),
    }
}

fn per_input<'a>(scores: Scores, labels: &'a [String], probs: &[f32]) -> PerInput<'a> {
    let pairs = labels.iter().zip(probs).map(|(l, &s)| LabelScore {
        label: l.as_str(),
        score: s,
    });
    match scores {
        Scores::Best => {
            let best = pairs
                .reduce(|best, x| if x.score > best.score { x } else { best })
                .unwrap_or(LabelScore {
                    label: "",
                    score: f32::NAN,
                });
            PerInput::Best(best)
        }
        Scores::AllInLabelOrder => PerInput::List(pairs.collect()),
        Scores::TopK(k) => {
            let mut all: Vec<LabelScore> = pairs.collect();
            // Stable, so ties keep label order; NaN sorts last.
            all.sort_by(|a, b| b.score.total_cmp(&a.score));
            if let Some(k) = k {
                all.truncate(k);
            }
            PerInput::List(all)
        }
    }
}

/// Writes the answers to `records` in `format`: JSON gets the one answer of a JSON request,
/// or a list of answers (one per line) for a JSON Lines request; JSON Lines gets one answer
/// per line, each ending in `\n`.
pub fn encode<T: Serialize>(answers: &[T], request: Format, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        Format::Json => match (request, answers) {
            (Format::Json, [one]) => write(&mut out, one),
            _ => write(&mut out, &answers),
        },
        Format::JsonLines => {
            for a in answers {
                write(&mut out, a);
                out.push(b'\n');
            }
        }
    }
    out
}

fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Plain structs, strings and floats always serialize into memory.
    serde_json::to_writer(out, value).expect("answers always serialize");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    fn answer_json(body: &str) -> String {
        let rec = parse_record(body).unwrap();
        let n = rec.texts().len();
        let labels = labels();
        let a = answer(&rec, &labels, &vec![vec![0.2, 0.5, 0.3]; n]);
        String::from_utf8(encode(&[a], Format::Json, Format::Json)).unwrap()
    }

    #[test]
    fn it_answers_in_the_pipeline_shapes() {
        let best = r#"{"label":"b","score":0.5}"#;
        let all =
            r#"[{"label":"a","score":0.2},{"label":"b","score":0.5},{"label":"c","score":0.3}]"#;
        let sorted =
            r#"[{"label":"b","score":0.5},{"label":"c","score":0.3},{"label":"a","score":0.2}]"#;
        let top2 = r#"[{"label":"b","score":0.5},{"label":"c","score":0.3}]"#;
        let cases = [
            (r#"{"inputs": "x"}"#, format!("[{best}]")),
            (r#"{"inputs": ["x", "y"]}"#, format!("[{best},{best}]")),
            (
                r#"{"inputs": "x", "parameters": {"return_all_scores": false}}"#,
                format!("[{best}]"),
            ),
            (
                r#"{"inputs": "x", "parameters": {"return_all_scores": true}}"#,
                format!("[{all}]"),
            ),
            (
                r#"{"inputs": ["x", "y"], "parameters": {"return_all_scores": true}}"#,
                format!("[{all},{all}]"),
            ),
            (
                r#"{"inputs": "x", "parameters": {"top_k": null}}"#,
                sorted.to_string(),
            ),
            (
                r#"{"inputs": ["x"], "parameters": {"top_k": null, "return_all_scores": false}}"#,
                format!("[{sorted}]"),
            ),
            (
                r#"{"inputs": "x", "parameters": {"top_k": 2}}"#,
                top2.to_string(),
            ),
            (
                r#"{"inputs": ["x", "y"], "parameters": {"top_k": 2}}"#,
                format!("[{top2},{top2}]"),
            ),
            (
                r#"{"inputs": "x", "parameters": {"top_k": 1}}"#,
                format!("[{best}]"),
            ),
            (
                r#"{"inputs": "x", "parameters": {"top_k": 9, "truncation": true}}"#,
                sorted.to_string(),
            ),
            (r#"{"inputs": []}"#, "[]".to_string()),
        ];
        for (body, want) in cases {
            assert_eq!(answer_json(body), want, "{body}");
        }
    }

    #[test]
    fn it_rejects_malformed_records_without_quoting_text() {
        for body in [
            "",
            "not json",
            "[]",
            r#""secret""#,
            r#"{"text": "secret"}"#,
            r#"{"inputs": 5}"#,
            r#"{"inputs": ["secret", 5]}"#,
            r#"{"inputs": {"text": "secret"}}"#,
            r#"{"inputs": "secret", "parameters": "secret"}"#,
            r#"{"inputs": "secret", "parameters": {"top_k": -1}}"#,
            r#"{"inputs": "secret", "parameters": {"top_k": "secret"}}"#,
            r#"{"inputs": "secret", "parameters": {"top_k": 1.5}}"#,
            r#"{"inputs": "secret", "parameters": {"return_all_scores": "secret"}}"#,
            r#"{"inputs": "secret", "parameters": {"function_to_apply": "sigmoid"}}"#,
        ] {
            let err = parse_body(body.as_bytes(), Format::Json).unwrap_err();
            assert!(matches!(err, WireError::BadRequest(_)), "{body}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        assert!(parse_body(&[0xff, 0xfe], Format::Json).is_err());
        assert!(parse_body(b"\n \n", Format::JsonLines).is_err());
    }

    #[test]
    fn it_reads_json_lines_in_order_and_names_the_bad_line() {
        let recs = parse_body(
            b"{\"inputs\": \"a\"}\r\n\n{\"inputs\": [\"b\", \"c\"]}\n{\"inputs\": \"d\"}",
            Format::JsonLines,
        )
        .unwrap();
        let texts: Vec<Vec<&str>> = recs.iter().map(Record::texts).collect();
        assert_eq!(texts, vec![vec!["a"], vec!["b", "c"], vec!["d"]]);
        let err =
            parse_body(b"{\"inputs\": \"a\"}\n{\"inputs\": 1}\n", Format::JsonLines).unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }

    #[test]
    fn it_honors_accept_and_content_type() {
        use Format::*;
        assert_eq!(Format::from_content_type(None), Ok(Json));
        assert_eq!(
            Format::from_content_type(Some("Application/JSON; charset=utf-8")),
            Ok(Json)
        );
        assert_eq!(
            Format::from_content_type(Some("application/jsonlines")),
            Ok(JsonLines)
        );
        assert!(matches!(
            Format::from_content_type(Some("text/csv")),
            Err(WireError::UnsupportedMediaType(_))
        ));
        assert_eq!(Format::from_accept(None, JsonLines), Ok(JsonLines));
        assert_eq!(Format::from_accept(Some("*/*"), JsonLines), Ok(JsonLines));
        assert_eq!(
            Format::from_accept(Some("text/html, application/json;q=0.9"), JsonLines),
            Ok(Json)
        );
        assert_eq!(
            Format::from_accept(Some("application/x-jsonlines"), Json),
            Ok(JsonLines)
        );
        assert!(matches!(
            Format::from_accept(Some("text/csv"), Json),
            Err(WireError::NotAcceptable(_))
        ));
    }

    #[test]
    fn it_encodes_one_answer_per_record() {
        let answers = [vec![1], vec![2]];
        assert_eq!(
            encode(&answers, Format::JsonLines, Format::JsonLines),
            b"[1]\n[2]\n"
        );
        assert_eq!(
            encode(&answers, Format::JsonLines, Format::Json),
            b"[[1],[2]]"
        );
        assert_eq!(encode(&[vec![1]], Format::Json, Format::Json), b"[1]");
        assert_eq!(
            encode(&[vec![1]], Format::Json, Format::JsonLines),
            b"[1]\n"
        );
    }
}
