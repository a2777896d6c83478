//! The S3 key grammar of Contact Lens post-call analysis files.
//!
//! ```text
//! [prefix/]Analysis/Voice/YYYY/MM/DD/<contactId>_analysis_<ts>.json
//! [prefix/]Analysis/Voice/Redacted/YYYY/MM/DD/<contactId>_analysis_redacted_<ts>.json
//! [prefix/]Analysis/Chat/...   (the same two shapes)
//! ```
//! `<ts>` is an ISO timestamp such as `2022-06-22T16:55:34Z`; the form with `_` for `:`
//! (`2024-01-14T07_05_09Z`, as in the STAR-derived data set) is accepted too.

use std::fmt;

use chrono::NaiveDate;
use percent_encoding::percent_decode_str;

/// The channel of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Channel {
    /// A phone call (`Analysis/Voice/`, `"Channel": "VOICE"`).
    Voice,
    /// A chat (`Analysis/Chat/`, `"Channel": "CHAT"`).
    Chat,
}

impl Channel {
    /// `"VOICE"` or `"CHAT"`, as Contact Lens writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "VOICE",
            Channel::Chat => "CHAT",
        }
    }

    /// Case-insensitive `VOICE` / `CHAT`.
    pub(crate) fn from_name(s: &str) -> Option<Channel> {
        if s.eq_ignore_ascii_case("VOICE") {
            Some(Channel::Voice)
        } else if s.eq_ignore_ascii_case("CHAT") {
            Some(Channel::Chat)
        } else {
            None
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an analysis file's S3 key says about the contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyInfo {
    /// `Voice` or `Chat`, from the `Analysis/<Channel>/` folder.
    pub channel: Channel,
    /// `true` for the redacted copy (`Redacted/` folder or `_analysis_redacted_` file name).
    pub redacted: bool,
    /// The contact id, from the file name.
    pub contact_id: String,
    /// The folder date `YYYY/MM/DD` (the agent-connect day, UTC).
    pub date: Option<NaiveDate>,
}

/// Parses a (decoded) S3 key of a Contact Lens post-call analysis file.
///
/// Returns `None` when the key is not one: recordings (`.wav`), redacted audio, chat
/// transcripts, our own `calltype/` outputs, anything else. Callers ignore those without error.
pub fn parse_key(key: &str) -> Option<KeyInfo> {
    if key.starts_with("calltype/") {
        return None;
    }
    let segs: Vec<&str> = key.split('/').collect();
    // The last `Analysis` folder followed by the exact grammar wins.
    let start = segs.iter().rposition(|s| *s == "Analysis")?;
    let rest = &segs[start + 1..];
    let channel = match *rest.first()? {
        "Voice" => Channel::Voice,
        "Chat" => Channel::Chat,
        _ => return None,
    };
    let (redacted_dir, date_segs) = match rest.get(1) {
        Some(&"Redacted") => (true, &rest[2..]),
        _ => (false, &rest[1..]),
    };
    if date_segs.len() != 4 {
        return None;
    }
    let date = folder_date(date_segs[0], date_segs[1], date_segs[2])?;
    let name = parse_file_name(date_segs[3])?;
    Some(KeyInfo {
        channel,
        // The documented keys agree; should a future key not, either marker means redacted.
        redacted: redacted_dir || name.redacted,
        contact_id: name.contact_id,
        date: Some(date),
    })
}

/// What the file name alone (`<contactId>_analysis[_redacted]_<ts>.json`) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNameInfo {
    /// The contact id before `_analysis_`.
    pub contact_id: String,
    /// `true` for `_analysis_redacted_`.
    pub redacted: bool,
    /// The date part of the timestamp (the analysis time, not necessarily the contact day).
    pub timestamp_date: Option<NaiveDate>,
}

/// Parses the last path segment of a key or local path as an analysis file name.
///
/// Useful for files copied out of S3 (for example the STAR-derived data set), whose paths do
/// not follow the full key grammar. Returns `None` when the name does not match.
pub fn parse_file_name(path: &str) -> Option<FileNameInfo> {
    let name = path.rsplit(['/', '\\']).next()?;
    let stem = name.strip_suffix(".json")?;
    let i = stem.find("_analysis_")?;
    let contact_id = &stem[..i];
    let after = &stem[i + "_analysis_".len()..];
    let (redacted, ts) = match after.strip_prefix("redacted_") {
        Some(ts) => (true, ts),
        None => (false, after),
    };
    if !is_contact_id(contact_id) || !ts.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let timestamp_date = ts.get(..10).and_then(parse_ymd);
    // A timestamp is digits, separators and a zone; no further path or spaces. `%` lets a
    // still-encoded notification key (`%3A`) through with the same result.
    if !ts
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'_' | b'.' | b'+' | b'%'))
    {
        return None;
    }
    Some(FileNameInfo {
        contact_id: contact_id.to_string(),
        redacted,
        timestamp_date,
    })
}

/// Decodes a key as S3 notifications carry it: `+` is a space, `%XX` a byte.
///
/// EventBridge "Object Created" events carry keys unencoded: do not call this on them
/// (a literal `+` or `%` in such a key would be mangled). Invalid UTF-8 after decoding is
/// replaced with U+FFFD.
pub fn decode_notification_key(raw: &str) -> String {
    let plus_as_space = raw.replace('+', " ");
    percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

/// `YYYY-MM-DD` (exactly; no strftime machinery, this runs once per parsed file).
pub(crate) fn parse_ymd(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    folder_date(&s[..4], &s[5..7], &s[8..10])
}

fn folder_date(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// Contact ids are UUIDs; accept any non-empty run of ASCII letters, digits and `-`.
fn is_contact_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_with_colons_and_underscores() {
        let a = parse_file_name("x/abc-1_analysis_2024-01-14T07:05:09Z.json").unwrap();
        let b = parse_file_name("abc-1_analysis_2024-01-14T07_05_09Z.json").unwrap();
        assert_eq!(a.contact_id, "abc-1");
        assert_eq!(a, b);
        assert_eq!(a.timestamp_date, NaiveDate::from_ymd_opt(2024, 1, 14));
    }

    #[test]
    fn invalid_folder_date_is_not_a_key() {
        assert!(
            parse_key("Analysis/Voice/2024/13/01/a_analysis_2024-01-01T00:00:00Z.json").is_none()
        );
    }
}
