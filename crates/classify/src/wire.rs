//! Wire formats of a classifier endpoint: the Hugging Face inference-toolkit JSON and JSON Lines.
//!
//! * [`WireFormat::Json`]: `{"inputs": ["a", "b"]}` as `application/json`, answered by
//!   `[{"label": "x", "score": 0.9}, ...]`, one element per input.
//! * [`WireFormat::JsonLines`]: one `{"inputs": "a"}` per line as `application/jsonlines`
//!   (what batch transform sends), answered by one JSON value per line.
//!
//! An answer element may be a `{"label", "score"}` object (optionally with `"scores"`, either
//! `{"label": score, ...}` or `[{"label", "score"}, ...]`), or a list of `{"label", "score"}`
//! objects (the toolkit's `top_k`/all-scores shape), in which case the best one wins.

use serde::Serialize;
use serde_json::Value;

use crate::Label;

/// How requests are encoded and answers decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// Hugging Face inference-toolkit JSON (`application/json`).
    Json,
    /// JSON Lines (`application/jsonlines`), one input per line.
    JsonLines,
}

/// An answer that does not fit the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable classifier answer: {0}")]
pub struct WireError(pub String);

impl std::str::FromStr for WireFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" | "application/json" => Ok(WireFormat::Json),
            "jsonlines" | "jsonl" | "application/jsonlines" => Ok(WireFormat::JsonLines),
            other => Err(format!(
                "unknown wire format {other:?} (expected json or jsonlines)"
            )),
        }
    }
}

#[derive(Serialize)]
struct Inputs<'a, T: Serialize + ?Sized> {
    inputs: &'a T,
}

impl WireFormat {
    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            WireFormat::Json => "application/json",
            WireFormat::JsonLines => "application/jsonlines",
        }
    }

    /// The request's `Accept`.
    pub fn accept(self) -> &'static str {
        self.content_type()
    }

    /// Bytes `text` adds to a request body (its JSON string plus separators).
    pub fn encoded_len(self, text: &str) -> usize {
        let quoted = serde_json::to_string(text)
            .map(|s| s.len())
            .unwrap_or(text.len() * 6 + 2);
        match self {
            WireFormat::Json => quoted + 1,
            WireFormat::JsonLines => quoted + r#"{"inputs":}"#.len() + 1,
        }
    }

    /// Bytes of a request body with no inputs at all.
    pub fn overhead(self) -> usize {
        match self {
            WireFormat::Json => r#"{"inputs":[]}"#.len(),
            WireFormat::JsonLines => 0,
        }
    }

    /// Encodes one request body.
    pub fn encode_request(self, texts: &[&str]) -> Vec<u8> {
        match self {
            WireFormat::Json => {
                serde_json::to_vec(&Inputs { inputs: texts }).expect("strings always serialize")
            }
            WireFormat::JsonLines => {
                let mut out = Vec::new();
                for t in texts {
                    serde_json::to_writer(&mut out, &Inputs { inputs: *t })
                        .expect("strings always serialize");
                    out.push(b'\n');
                }
                out
            }
        }
    }

    /// Decodes an answer to a request of `expected` inputs.
    pub fn decode_response(self, body: &[u8], expected: usize) -> Result<Vec<Label>, WireError> {
        let values: Vec<Value> = match self {
            WireFormat::Json => {
                let v: Value = serde_json::from_slice(body)
                    .map_err(|e| WireError(format!("not JSON: {e}")))?;
                match v {
                    // A single input may be answered by a bare object.
                    Value::Object(_) if expected == 1 => vec![v],
                    Value::Array(items) => {
                        // `[{"label","score"}, ...]` for one input that got all its scores is
                        // ambiguous with one answer per input; the count decides.
                        if expected == 1 && items.len() > 1 && items.iter().all(Value::is_object) {
                            vec![Value::Array(items)]
                        } else {
                            items
                        }
                    }
                    _ => return Err(WireError("expected a JSON array".into())),
                }
            }
            WireFormat::JsonLines => std::str::from_utf8(body)
                .map_err(|e| WireError(format!("not UTF-8: {e}")))?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).map_err(|e| WireError(format!("bad line: {e}"))))
                .collect::<Result<_, _>>()?,
        };
        if values.len() != expected {
            return Err(WireError(format!(
                "{} answers for {expected} inputs",
                values.len()
            )));
        }
        values.iter().map(decode_one).collect()
    }
}

fn label_score(v: &Value) -> Option<(String, f32)> {
    let label = v.get("label")?.as_str()?.to_string();
    let score = v.get("score")?.as_f64()? as f32;
    Some((label, score))
}

fn decode_one(v: &Value) -> Result<Label, WireError> {
    match v {
        Value::Object(map) => {
            let (label, score) =
                label_score(v).ok_or_else(|| WireError("answer lacks label or score".into()))?;
            let scores = match map.get("scores") {
                None | Some(Value::Null) => None,
                Some(Value::Object(m)) => Some(
                    m.iter()
                        .map(|(k, s)| {
                            s.as_f64()
                                .map(|s| (k.clone(), s as f32))
                                .ok_or_else(|| WireError("non-numeric score".into()))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .map(|i| label_score(i).ok_or_else(|| WireError("bad scores entry".into())))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                Some(_) => return Err(WireError("scores is neither a map nor a list".into())),
            };
            Ok(Label {
                label,
                score,
                scores,
            })
        }
        Value::Array(items) => {
            let all = items
                .iter()
                .map(|i| label_score(i).ok_or_else(|| WireError("bad scores entry".into())))
                .collect::<Result<Vec<_>, _>>()?;
            let (label, score) = all
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .cloned()
                .ok_or_else(|| WireError("empty list of scores".into()))?;
            Ok(Label {
                label,
                score,
                scores: Some(all),
            })
        }
        _ => Err(WireError("answer is neither an object nor a list".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_request_is_the_toolkit_shape() {
        let body = WireFormat::Json.encode_request(&["a \"b\"", "c"]);
        assert_eq!(body, br#"{"inputs":["a \"b\"","c"]}"#);
        assert_eq!(
            body.len(),
            WireFormat::Json.overhead()
                + WireFormat::Json.encoded_len("a \"b\"")
                + WireFormat::Json.encoded_len("c")
                - 1
        );
    }

    #[test]
    fn jsonlines_request_has_one_object_per_line() {
        let body = WireFormat::JsonLines.encode_request(&["a\nb", "c"]);
        assert_eq!(body, b"{\"inputs\":\"a\\nb\"}\n{\"inputs\":\"c\"}\n");
        let f = WireFormat::JsonLines;
        assert_eq!(body.len(), f.encoded_len("a\nb") + f.encoded_len("c"));
    }

    #[test]
    fn json_answers_decode_in_order() {
        let got = WireFormat::Json
            .decode_response(
                br#"[{"label":"billing","score":0.9},{"label":"sales","score":0.5}]"#,
                2,
            )
            .unwrap();
        assert_eq!(got[0].label, "billing");
        assert_eq!(got[1].label, "sales");
        assert!((got[1].score - 0.5).abs() < 1e-6);
        assert_eq!(got[0].scores, None);
    }

    #[test]
    fn all_scores_lists_pick_the_best() {
        let body = br#"[[{"label":"a","score":0.2},{"label":"b","score":0.8}],[{"label":"a","score":0.7},{"label":"b","score":0.3}]]"#;
        let got = WireFormat::Json.decode_response(body, 2).unwrap();
        assert_eq!(got[0].label, "b");
        assert_eq!(got[1].label, "a");
        assert_eq!(got[1].scores.as_ref().unwrap().len(), 2);
        // One input answered by its list of all scores.
        let one = br#"[{"label":"a","score":0.2},{"label":"b","score":0.8}]"#;
        let got = WireFormat::Json.decode_response(one, 1).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].label, "b");
    }

    #[test]
    fn scores_maps_are_read() {
        let body = br#"[{"label":"a","score":0.6,"scores":{"a":0.6,"b":0.4}}]"#;
        let got = WireFormat::Json.decode_response(body, 1).unwrap();
        let mut s = got[0].scores.clone().unwrap();
        s.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(s, vec![("a".to_string(), 0.6), ("b".to_string(), 0.4)]);
    }

    #[test]
    fn jsonlines_answers_decode_line_by_line() {
        let body = b"{\"label\":\"x\",\"score\":0.5}\n[{\"label\":\"y\",\"score\":0.9}]\n\n";
        let got = WireFormat::JsonLines.decode_response(body, 2).unwrap();
        assert_eq!(got[0].label, "x");
        assert_eq!(got[1].label, "y");
    }

    #[test]
    fn it_rejects_answers_of_the_wrong_count_or_shape() {
        let f = WireFormat::Json;
        assert!(f
            .decode_response(br#"[{"label":"x","score":0.5}]"#, 2)
            .is_err());
        assert!(f.decode_response(br#"{"error":"boom"}"#, 2).is_err());
        assert!(f.decode_response(br#"[{"label":"x"}]"#, 1).is_err());
        assert!(f.decode_response(b"not json", 1).is_err());
        assert!(WireFormat::JsonLines
            .decode_response(b"{\"label\":\"x\",\"score\":1}\n", 2)
            .is_err());
    }

    #[test]
    fn formats_parse_from_config_strings() {
        assert_eq!("json".parse::<WireFormat>().unwrap(), WireFormat::Json);
        assert_eq!(
            "JSONLines".parse::<WireFormat>().unwrap(),
            WireFormat::JsonLines
        );
        assert!("csv".parse::<WireFormat>().is_err());
    }
}
