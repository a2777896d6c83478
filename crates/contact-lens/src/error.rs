//! The one error type of this crate.

/// Why a document could not be turned into a [`crate::Contact`].
///
/// Every variant is permanent: parsing the same bytes again gives the same error, so callers
/// quarantine the input rather than retry. No variant carries file content (transcript text,
/// names); [`ParseError::reason`] is safe for logs and quarantine notes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not UTF-8 (JSON must be).
    #[error("not UTF-8: invalid byte sequence at byte offset {valid_up_to}")]
    NotUtf8 {
        /// Length of the longest valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The input is empty or whitespace only.
    #[error("empty document ({len} bytes, whitespace only)")]
    Empty {
        /// Input length in bytes.
        len: usize,
    },
    /// The input is not well-formed JSON.
    #[error("malformed JSON at line {line}, column {column}: {msg}")]
    Malformed {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The JSON parser's message (it names expected tokens, never file content).
        msg: String,
    },
    /// The JSON ends early, as when an upload or read was cut short.
    #[error("truncated JSON: unexpected end of input at line {line}, column {column}")]
    Truncated {
        /// 1-based line where the input ended.
        line: usize,
        /// 1-based column where the input ended.
        column: usize,
    },
    /// A Contact Lens real-time segment (Kinesis stream record with `EventType`/`Segments`),
    /// not a post-call analysis file.
    #[error("Contact Lens real-time segment (EventType/Segments), not a post-call analysis file")]
    RealtimeSegment,
    /// Well-formed JSON of some other kind.
    #[error("not a Contact Lens post-call analysis file: {what}")]
    NotPostCallAnalysis {
        /// What the document looks like instead, e.g. "a JSON array" or "an S3 event notification".
        what: String,
    },
    /// A field of a post-call analysis file has a type this parser cannot use.
    #[error("invalid field at line {line}, column {column}: {msg}")]
    InvalidField {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What was expected; quoted values from the file are removed.
        msg: String,
    },
    /// The `Version` field is missing or not a version string this parser understands
    /// (neither `N.N[.N]` nor `CHANNEL-YYYY-MM-DD`).
    #[error("unsupported Contact Lens version {version:?}")]
    UnsupportedVersion {
        /// The version string as found (empty when the field is missing), at most 40 chars.
        version: String,
    },
    /// The `Channel` is neither `VOICE` nor `CHAT`.
    #[error("unsupported Contact Lens channel {channel:?}")]
    UnsupportedChannel {
        /// The channel as found, at most 40 chars.
        channel: String,
    },
    /// The analysis job did not complete (`JobStatus` other than `COMPLETED`) and there is no transcript.
    #[error("Contact Lens job status {status:?}, no transcript")]
    JobNotCompleted {
        /// The job status as found, at most 40 chars.
        status: String,
    },
    /// Neither the file (`CustomerMetadata.ContactId`) nor the key supplies a contact id.
    #[error("no contact id in the file (CustomerMetadata.ContactId) nor in the key")]
    MissingContactId,
}

impl ParseError {
    /// One line, no file content: suitable for a quarantine note and for logs.
    pub fn reason(&self) -> String {
        let s = self.to_string();
        s.replace(['\r', '\n'], " ")
    }

    /// A short stable code for metrics and quarantine prefixes, e.g. `"malformed"`.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::NotUtf8 { .. } => "not_utf8",
            ParseError::Empty { .. } => "empty",
            ParseError::Malformed { .. } => "malformed",
            ParseError::Truncated { .. } => "truncated",
            ParseError::RealtimeSegment => "realtime_segment",
            ParseError::NotPostCallAnalysis { .. } => "not_post_call_analysis",
            ParseError::InvalidField { .. } => "invalid_field",
            ParseError::UnsupportedVersion { .. } => "unsupported_version",
            ParseError::UnsupportedChannel { .. } => "unsupported_channel",
            ParseError::JobNotCompleted { .. } => "job_not_completed",
            ParseError::MissingContactId => "missing_contact_id",
        }
    }

    /// Maps a serde_json error onto the typed variants, without file content.
    pub(crate) fn from_json(e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let (line, column) = (e.line(), e.column());
        match e.classify() {
            Category::Eof => ParseError::Truncated { line, column },
            Category::Syntax | Category::Io => ParseError::Malformed {
                line,
                column,
                msg: scrub(&message_only(e)),
            },
            Category::Data => ParseError::InvalidField {
                line,
                column,
                msg: scrub(&message_only(e)),
            },
        }
    }
}

/// serde_json's message without its " at line L column C" suffix (we keep those as fields).
fn message_only(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

/// Removes anything quoted with `"` (serde puts unexpected values there) and caps the length.
fn scrub(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(200));
    let mut in_quote = false;
    for c in msg.chars() {
        if c == '"' {
            if !in_quote {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    if in_quote {
        out.push('"');
    }
    truncate_chars(&out, 200)
}

/// At most `max` chars of `s`, control characters replaced: for short identifiers in errors.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_quoted_values() {
        assert_eq!(
            scrub("invalid type: string \"my secret\", expected u64"),
            "invalid type: string \"…\", expected u64"
        );
        assert_eq!(scrub("expected `,` or `}`"), "expected `,` or `}`");
    }
}
