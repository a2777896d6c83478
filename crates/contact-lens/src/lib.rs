//! Contact Lens post-call analysis documents: parsing (voice and chat, every version seen),
//! the S3 key grammar, and transcript text extraction.
//!
//! Main types and functions:
//! - [`parse`] / [`parse_with`]: analysis JSON bytes (plus the S3 key, when known) to a [`Contact`]
//!   with its [`Turn`]s, or a typed [`ParseError`] that says what the input is instead.
//! - [`Contact::transcript`]: one line of text for a classifier, all turns or one [`Participants`] side.
//! - [`parse_key`] / [`KeyInfo`]: what an `Analysis/Voice|Chat/...` key says; `None` for other keys.
//! - [`decode_notification_key`]: S3-notification key decoding (`%3A`, `+`).
//!
//! Shapes understood: voice `1.0.0` (participant ids are ARNs or short ids, mapped to roles
//! through `Participants`), `1.1.0`, `VOICE-2022-11-30`, chat `CHAT-2022-11-30`, raw and
//! redacted, and any later version of the form `N.N[.N]` or `CHANNEL-YYYY-MM-DD`, with unknown
//! fields ignored. Real-time Kinesis segments are rejected with [`ParseError::RealtimeSegment`].
//!
//! Inside, `raw` declares the fields read, one table per struct, for both readers: serde_json
//! (the reference) and the single-pass reader in `fast`, which must give the same document
//! or give up. Only `fast` holds `unsafe` code (one block, with its `SAFETY:` argument).
//!
//! Architecture invariant: this crate is pure. It does no I/O and must never depend on AWS,
//! Lambda or async crates. Its errors and logs carry no transcript content.

mod error;
mod fast;
mod key;
mod raw;
mod text;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate};
use serde::de::IgnoredAny;

pub use error::ParseError;
pub use key::{
    decode_notification_key, parse_file_name, parse_key, Channel, FileNameInfo, KeyInfo,
};

use error::truncate_chars;
use raw::{RawDoc, RawItem, RawParticipant};

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// The agent (or, for chat, a bot acting as `AGENT`).
    Agent,
    /// The customer.
    Customer,
    /// Chat system messages (queue notices, greetings from the flow).
    System,
    /// Any other or unknown participant (`CUSTOM_BOT`, `SUPERVISOR`, an unmapped id).
    Other,
}

impl Role {
    /// `"AGENT"`, `"CUSTOMER"`, `"SYSTEM"` or `"OTHER"`: the tag used by [`Contact::transcript`].
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "AGENT",
            Role::Customer => "CUSTOMER",
            Role::System => "SYSTEM",
            Role::Other => "OTHER",
        }
    }

    /// Maps a Contact Lens `ParticipantRole` (case-insensitive); unknown names are `Other`.
    pub fn from_participant_role(s: &str) -> Role {
        match s {
            "AGENT" => return Role::Agent,
            "CUSTOMER" => return Role::Customer,
            "SYSTEM" => return Role::System,
            _ => {}
        }
        let s = s.trim();
        if s.eq_ignore_ascii_case("AGENT") {
            Role::Agent
        } else if s.eq_ignore_ascii_case("CUSTOMER") {
            Role::Customer
        } else if s.eq_ignore_ascii_case("SYSTEM") {
            Role::System
        } else {
            Role::Other
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose turns [`Contact::transcript`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Participants {
    /// Every turn, each prefixed with its role tag.
    #[default]
    All,
    /// Only the customer's turns, untagged.
    Customer,
    /// Only the agent's turns, untagged.
    Agent,
}

impl Participants {
    /// `"all"`, `"customer"` or `"agent"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Participants::All => "all",
            Participants::Customer => "customer",
            Participants::Agent => "agent",
        }
    }
}

impl fmt::Display for Participants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Participants::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown participants {0:?}: expected all, customer or agent")]
pub struct UnknownParticipants(pub String);

impl FromStr for Participants {
    type Err = UnknownParticipants;

    /// `all`, `customer` or `agent`, case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("all") {
            Ok(Participants::All)
        } else if t.eq_ignore_ascii_case("customer") {
            Ok(Participants::Customer)
        } else if t.eq_ignore_ascii_case("agent") {
            Ok(Participants::Agent)
        } else {
            Err(UnknownParticipants(truncate_chars(s, 40)))
        }
    }
}

/// One turn (voice) or message (chat); its text is [`Contact::text`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Turn {
    /// Who spoke or wrote it.
    pub role: Role,
    /// Voice: `BeginOffsetMillis`. Chat: milliseconds since the first transcript item's `AbsoluteTime`.
    pub begin_ms: Option<u64>,
    /// Voice: `EndOffsetMillis`. Chat: `None`.
    pub end_ms: Option<u64>,
    /// Where its text lies in the contact's text buffer.
    #[serde(skip)]
    span: (usize, usize),
}

/// A parsed post-call analysis: the fields the pipeline needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Contact {
    /// `CustomerMetadata.ContactId`, else the key's contact id.
    pub contact_id: String,
    /// `CustomerMetadata.InstanceId`.
    pub instance_id: Option<String>,
    /// `Channel` (else inferred from the version, the key, or the transcript's shape).
    pub channel: Channel,
    /// `ContentMetadata.Output == "Redacted"`, else what the key says, else `false`.
    pub redacted: bool,
    /// `LanguageCode`, e.g. `en-US`.
    pub language: Option<String>,
    /// `Version` as written, e.g. `1.1.0` or `VOICE-2022-11-30`.
    pub version: String,
    /// The key's folder date; else the date folder of `CustomerMetadata.InputS3Uri`; else
    /// (chat) the UTC day of the first `AbsoluteTime`.
    pub contact_date: Option<NaiveDate>,
    /// `ConversationCharacteristics.TotalConversationDurationMillis`; else the last turn's end
    /// (voice) or the span of `AbsoluteTime`s (chat).
    pub duration_ms: Option<u64>,
    /// Turns in order of start (voice: `BeginOffsetMillis`; chat: `AbsoluteTime`).
    pub turns: Vec<Turn>,
    /// Every turn's text, normalised, back to back (one allocation instead of one per turn).
    #[serde(skip)]
    texts: String,
    /// `ConversationCharacteristics.Sentiment.OverallSentiment` of the customer.
    pub sentiment_customer: Option<f64>,
    /// `ConversationCharacteristics.Sentiment.OverallSentiment` of the agent.
    pub sentiment_agent: Option<f64>,
    /// `Categories.MatchedCategories`.
    pub categories: Vec<String>,
    /// The generative post-contact summary, when present
    /// (`ConversationCharacteristics.ContactSummary[.AutoGenerated].PostContactSummary.Content`).
    pub summary: Option<String>,
}

impl Contact {
    /// The text of `turn` (a turn of this contact), whitespace normalised: one line, trimmed,
    /// never empty.
    pub fn text(&self, turn: &Turn) -> &str {
        &self.texts[turn.span.0..turn.span.1]
    }

    /// The transcript as one line of text.
    ///
    /// Turns are taken in order of start, whitespace normalised (any run of whitespace,
    /// CR/LF and tabs included, becomes one space; trimmed). `All`: every turn prefixed by
    /// its role tag (`"AGENT: ..."`, `"CUSTOMER: ..."`, also `SYSTEM`/`OTHER` where present),
    /// joined by a single space. `Customer`/`Agent`: only that role's turns, untagged, joined
    /// by a space.
    pub fn transcript(&self, who: Participants) -> String {
        let mut out = String::with_capacity(self.texts.len() + 11 * self.turns.len());
        for t in &self.turns {
            let wanted = match who {
                Participants::All => true,
                Participants::Customer => t.role == Role::Customer,
                Participants::Agent => t.role == Role::Agent,
            };
            if !wanted {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            if who == Participants::All {
                out.push_str(t.role.as_str());
                out.push_str(": ");
            }
            // Normalised and non-empty by construction: the buffer is only written by parse.
            out.push_str(self.text(t));
        }
        out
    }
}

/// Turn texts being collected into one buffer.
#[derive(Default)]
struct Texts(String);

impl Texts {
    fn with_capacity(n: usize) -> Self {
        Self(String::with_capacity(n))
    }

    /// Appends `s` normalised; its span, or `None` when it has no visible text.
    fn push(&mut self, s: &str) -> Option<(usize, usize)> {
        let start = self.0.len();
        text::push_normalised(&mut self.0, s).then_some((start, self.0.len()))
    }
}

/// Options of [`parse_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Keep chat `SYSTEM` messages as [`Role::System`] turns (default: dropped).
    pub include_system: bool,
}

impl ParseOptions {
    /// Options with `include_system` set as given.
    pub fn with_system(include_system: bool) -> Self {
        ParseOptions { include_system }
    }
}

/// Parses a post-call analysis file with default [`ParseOptions`].
///
/// `key` (the S3 key, already decoded, or a local path) supplies the contact id, date and
/// raw-vs-redacted where the file lacks them (the AWS documentation examples have no
/// `CustomerMetadata`). A key that is not an analysis key is ignored.
pub fn parse(bytes: &[u8], key: Option<&str>) -> Result<Contact, ParseError> {
    parse_with(bytes, key, ParseOptions::default())
}

/// Parses a post-call analysis file; see [`parse`].
///
/// The fields are read by a single-pass reader made for this format; on anything it does not
/// handle exactly as serde_json would (malformed input included), the text is parsed again
/// with serde_json, which gives the same result or the error.
pub fn parse_with(
    bytes: &[u8],
    key: Option<&str>,
    opts: ParseOptions,
) -> Result<Contact, ParseError> {
    let text = object_text(bytes)?;
    let doc = match fast::parse_doc(text) {
        Some(doc) => doc,
        None => serde_json::from_str(text).map_err(|e| ParseError::from_json(&e))?,
    };
    build(doc, key, opts)
}

/// [`parse_with`] through serde_json alone (the fast reader skipped): the reference the fast
/// reader is tested against, kept public for benchmarks.
#[doc(hidden)]
pub fn parse_with_serde_json(
    bytes: &[u8],
    key: Option<&str>,
    opts: ParseOptions,
) -> Result<Contact, ParseError> {
    let text = object_text(bytes)?;
    let doc = serde_json::from_str(text).map_err(|e| ParseError::from_json(&e))?;
    build(doc, key, opts)
}

/// The input as text that starts with `{` (after a BOM and whitespace), or the error.
fn object_text(bytes: &[u8]) -> Result<&str, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match text.bytes().find(|b| !b.is_ascii_whitespace()) {
        None => Err(ParseError::Empty { len: bytes.len() }),
        Some(b'{') => Ok(text),
        Some(first) => Err(not_an_object(text, first)),
    }
}

/// The error for well-formed or malformed input whose top level is not an object.
fn not_an_object(text: &str, first: u8) -> ParseError {
    if let Err(e) = serde_json::from_str::<IgnoredAny>(text) {
        return ParseError::from_json(&e);
    }
    let what = match first {
        b'[' => "a JSON array",
        b'"' => "a JSON string",
        b't' | b'f' => "a JSON boolean",
        b'n' => "JSON null",
        _ => "a JSON number",
    };
    ParseError::NotPostCallAnalysis {
        what: what.to_string(),
    }
}

/// What an object without the post-call markers looks like, for the error message.
fn describe_other(doc: &RawDoc<'_>) -> String {
    let what = if doc.records.is_some() {
        "an S3 or SQS event notification (Records)"
    } else if doc.detail_type.is_some() {
        "an EventBridge event (detail-type)"
    } else if doc.transcribe_job_name.is_some() || doc.transcribe_results.is_some() {
        "an Amazon Transcribe output (jobName/results)"
    } else if doc.contact_id.is_some() && doc.initiation_method.is_some() {
        "an Amazon Connect contact record (ContactId/InitiationMethod)"
    } else if doc.version.is_none() && doc.channel.is_none() && doc.customer_metadata.is_none() {
        "a JSON object without Version, Channel, JobStatus or Transcript"
    } else {
        "a JSON object without JobStatus or Transcript"
    };
    what.to_string()
}

/// Checks the `Version` string; returns the channel its prefix names, if any.
fn check_version(v: &str) -> Result<Option<Channel>, ParseError> {
    let unsupported = || ParseError::UnsupportedVersion {
        version: truncate_chars(v, 40),
    };
    let t = v.trim();
    let parts: Vec<&str> = t.split('.').collect();
    if (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Ok(None);
    }
    if let Some((prefix, rest)) = t.split_once('-') {
        let dated = rest.get(..10).is_some_and(|d| key::parse_ymd(d).is_some());
        if dated
            && !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
        {
            return Ok(Channel::from_name(prefix));
        }
    }
    Err(unsupported())
}

fn build(doc: RawDoc<'_>, key: Option<&str>, opts: ParseOptions) -> Result<Contact, ParseError> {
    if doc.event_type.is_some() || doc.segments.is_some() {
        return Err(ParseError::RealtimeSegment);
    }
    if doc.transcript.is_none() && doc.job_status.is_none() {
        return Err(ParseError::NotPostCallAnalysis {
            what: describe_other(&doc),
        });
    }
    if doc.version.is_none() && doc.job_name.is_some() {
        return Err(ParseError::NotPostCallAnalysis {
            what: "an Amazon Transcribe Call Analytics output (JobName, no Version)".to_string(),
        });
    }
    let items = doc.transcript.map(|t| t.0).unwrap_or_default();
    if let Some(status) = doc.job_status.as_deref() {
        if !status.trim().eq_ignore_ascii_case("COMPLETED") && items.is_empty() {
            return Err(ParseError::JobNotCompleted {
                status: truncate_chars(status, 40),
            });
        }
    }
    let version = doc
        .version
        .as_deref()
        .ok_or(ParseError::UnsupportedVersion {
            version: String::new(),
        })?;
    let version_channel = check_version(version)?;

    let key_info = key.and_then(parse_key);
    let name_info = match &key_info {
        Some(_) => None,
        None => key.and_then(parse_file_name),
    };

    let channel = match doc.channel.as_deref() {
        Some(c) => Channel::from_name(c.trim()).ok_or_else(|| ParseError::UnsupportedChannel {
            channel: truncate_chars(c, 40),
        })?,
        None => version_channel
            .or(key_info.as_ref().map(|k| k.channel))
            .unwrap_or_else(|| {
                if items.iter().any(|i| i.absolute_time.is_some()) {
                    Channel::Chat
                } else {
                    Channel::Voice
                }
            }),
    };

    let meta = doc.customer_metadata.unwrap_or_default();
    let contact_id = meta
        .contact_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| key_info.as_ref().map(|k| k.contact_id.clone()))
        .or_else(|| name_info.as_ref().map(|n| n.contact_id.clone()))
        .ok_or(ParseError::MissingContactId)?;

    let output = doc.content_metadata.and_then(|m| m.output);
    let redacted = match output.as_deref().map(str::trim) {
        Some(o) if o.eq_ignore_ascii_case("Redacted") => true,
        Some(o) if o.eq_ignore_ascii_case("Raw") => false,
        _ => key_info
            .as_ref()
            .map(|k| k.redacted)
            .or(name_info.as_ref().map(|n| n.redacted))
            .unwrap_or(false),
    };

    let participants = doc.participants.unwrap_or_default();
    let roles = RoleMap::new(&participants);

    let mut texts = Texts::with_capacity(
        items
            .iter()
            .map(|i| i.content.as_deref().map_or(0, str::len))
            .sum(),
    );
    let (turns, span) = match channel {
        Channel::Voice => (voice_turns(&items, &roles, &mut texts), None),
        Channel::Chat => chat_turns(&items, &roles, opts, &mut texts),
    };

    let cc = doc.conversation_characteristics.unwrap_or_default();
    let (mut sentiment_customer, mut sentiment_agent) = (None, None);
    if let Some(overall) = cc.sentiment.and_then(|s| s.overall_sentiment) {
        for (k, v) in overall.by_key.iter().chain(overall.by_role.iter()) {
            match roles.role_of(k) {
                Role::Customer if sentiment_customer.is_none() => sentiment_customer = Some(*v),
                Role::Agent if sentiment_agent.is_none() => sentiment_agent = Some(*v),
                _ => {}
            }
        }
    }

    let summary = cc.contact_summary.and_then(|s| {
        let auto = s.auto_generated.unwrap_or_default();
        [
            s.post_contact_summary,
            auto.post_contact_summary,
            s.overall_summary,
            auto.overall_summary,
        ]
        .into_iter()
        .flatten()
        .filter(|x| {
            !x.status
                .as_deref()
                .is_some_and(|st| st.eq_ignore_ascii_case("FAILED"))
        })
        .filter_map(|x| x.content)
        .map(|c| text::normalised(&c))
        .find(|c| !c.is_empty())
    });

    let categories = doc
        .categories
        .and_then(|c| c.matched_categories)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.0)
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();

    let duration_ms = cc
        .total_conversation_duration_millis
        .or_else(|| match channel {
            Channel::Voice => turns.iter().filter_map(|t| t.end_ms).max(),
            Channel::Chat => span.map(|(first, last)| (last - first).max(0) as u64),
        });

    let contact_date = key_info
        .as_ref()
        .and_then(|k| k.date)
        .or_else(|| meta.input_s3_uri.as_deref().and_then(date_in_path))
        .or_else(|| {
            span.and_then(|(first, _)| DateTime::from_timestamp_millis(first))
                .map(|d| d.date_naive())
        });

    Ok(Contact {
        contact_id,
        instance_id: meta
            .instance_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        channel,
        redacted,
        language: doc
            .language_code
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        version: version.trim().to_owned(),
        contact_date,
        duration_ms,
        turns,
        texts: texts.0,
        sentiment_customer,
        sentiment_agent,
        categories,
        summary,
    })
}

/// Participant id to role, from the `Participants` list, resolved once per document.
struct RoleMap<'a> {
    /// `(ParticipantId, role)` in list order; ids trimmed.
    entries: Vec<(&'a str, Role)>,
}

impl<'a> RoleMap<'a> {
    fn new(participants: &'a [RawParticipant<'_>]) -> Self {
        let entries = participants
            .iter()
            .filter_map(|p| {
                let id = p.participant_id.as_deref()?.trim();
                let role = Role::from_participant_role(p.participant_role.as_deref()?);
                Some((id, role))
            })
            .collect();
        RoleMap { entries }
    }

    /// The role of a participant id (or of a key of a per-participant map).
    ///
    /// 1. the `Participants` entry with this `ParticipantId`;
    /// 2. the id itself when it is a role name (`AGENT`, `CUSTOMER`, `SYSTEM`: 1.1.0 and later);
    /// 3. an ARN (`arn:...`) is the agent: the 2020 documentation says agent ids are ARNs;
    /// 4. otherwise `Other`.
    fn role_of(&self, id: &str) -> Role {
        if let Some(&(_, role)) = self.entries.iter().find(|(k, _)| *k == id) {
            return role;
        }
        let id = id.trim();
        if let Some(&(_, role)) = self.entries.iter().find(|(k, _)| *k == id) {
            return role;
        }
        match Role::from_participant_role(id) {
            Role::Other if id.starts_with("arn:") => Role::Agent,
            r => r,
        }
    }

    /// The role of a transcript item: its own `ParticipantRole`, else by `ParticipantId`.
    fn item_role(&self, item: &RawItem<'_>) -> Role {
        if let Some(r) = item.participant_role.as_deref() {
            return Role::from_participant_role(r);
        }
        match item.participant_id.as_deref() {
            Some(id) => self.role_of(id),
            None => Role::Other,
        }
    }
}

fn is_message(item: &RawItem<'_>) -> bool {
    item.kind
        .as_deref()
        .is_some_and(|k| k.trim().eq_ignore_ascii_case("MESSAGE"))
}

/// Voice turns ordered by `BeginOffsetMillis` (stable; file order kept if any offset is missing).
fn voice_turns(items: &[RawItem<'_>], roles: &RoleMap<'_>, texts: &mut Texts) -> Vec<Turn> {
    let mut turns = Vec::with_capacity(items.len());
    for item in items {
        if item.kind.is_some() && !is_message(item) {
            continue;
        }
        let Some(content) = item.content.as_deref() else {
            continue;
        };
        let Some(span) = texts.push(content) else {
            continue;
        };
        turns.push(Turn {
            role: roles.item_role(item),
            begin_ms: item.begin_offset_millis,
            end_ms: item.end_offset_millis,
            span,
        });
    }
    if turns.iter().all(|t| t.begin_ms.is_some())
        && !turns.windows(2).all(|w| w[0].begin_ms <= w[1].begin_ms)
    {
        turns.sort_by_key(|t| t.begin_ms);
    }
    turns
}

/// Chat MESSAGE items ordered by `AbsoluteTime`, and the (first, last) item time in epoch ms.
fn chat_turns(
    items: &[RawItem<'_>],
    roles: &RoleMap<'_>,
    opts: ParseOptions,
    texts: &mut Texts,
) -> (Vec<Turn>, Option<(i64, i64)>) {
    let times: Vec<Option<i64>> = items
        .iter()
        .map(|i| {
            i.absolute_time
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
                .map(|d| d.timestamp_millis())
        })
        .collect();
    let first = times.iter().flatten().min().copied();
    let last = times.iter().flatten().max().copied();
    let mut timed: Vec<(Option<i64>, Turn)> = Vec::with_capacity(items.len());
    for (item, time) in items.iter().zip(&times) {
        if !is_message(item) {
            continue;
        }
        let role = roles.item_role(item);
        if role == Role::System && !opts.include_system {
            continue;
        }
        let Some(content) = item.content.as_deref() else {
            continue;
        };
        let Some(span) = texts.push(content) else {
            continue;
        };
        let begin_ms = match (time, first) {
            (Some(t), Some(f)) => Some((t - f).max(0) as u64),
            _ => item.begin_offset_millis,
        };
        timed.push((
            *time,
            Turn {
                role,
                begin_ms,
                end_ms: item.end_offset_millis,
                span,
            },
        ));
    }
    if timed.iter().all(|(t, _)| t.is_some()) {
        timed.sort_by_key(|(t, _)| *t);
    }
    let span = first.zip(last);
    (timed.into_iter().map(|(_, t)| t).collect(), span)
}

/// The last `YYYY/MM/DD` folder triple in a path or S3 URI.
fn date_in_path(path: &str) -> Option<NaiveDate> {
    let segs: Vec<&str> = path.split('/').collect();
    segs.windows(3).rev().find_map(|w| {
        let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if ok(w[0], 4) && ok(w[1], 2) && ok(w[2], 2) {
            NaiveDate::from_ymd_opt(w[0].parse().ok()?, w[1].parse().ok()?, w[2].parse().ok()?)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(check_version("1.0.0"), Ok(None));
        assert_eq!(check_version("1.1.0"), Ok(None));
        assert_eq!(check_version("VOICE-2022-11-30"), Ok(Some(Channel::Voice)));
        assert_eq!(check_version("CHAT-2022-11-30"), Ok(Some(Channel::Chat)));
        assert_eq!(check_version("EMAIL-2030-01-01"), Ok(None));
        assert!(check_version("banana").is_err());
        assert!(check_version("").is_err());
        assert!(check_version("VOICE-latest").is_err());
    }

    #[test]
    fn transcript_joins_normalised_turns() {
        let mut texts = Texts::default();
        let mut turns = Vec::new();
        for (role, text) in [
            (Role::Agent, " Hello,\r\n  how\tcan I help? "),
            (Role::Customer, "\n\n"),
            (Role::Customer, "My\u{2028}bill."),
        ] {
            if let Some(span) = texts.push(text) {
                turns.push(Turn {
                    role,
                    begin_ms: None,
                    end_ms: None,
                    span,
                });
            }
        }
        let c = Contact {
            contact_id: "c".into(),
            instance_id: None,
            channel: Channel::Voice,
            redacted: false,
            language: None,
            version: "1.1.0".into(),
            contact_date: None,
            duration_ms: None,
            turns,
            texts: texts.0,
            sentiment_customer: None,
            sentiment_agent: None,
            categories: vec![],
            summary: None,
        };
        assert_eq!(c.turns.len(), 2, "the blank turn is dropped");
        assert_eq!(c.text(&c.turns[0]), "Hello, how can I help?");
        assert_eq!(
            c.transcript(Participants::All),
            "AGENT: Hello, how can I help? CUSTOMER: My bill."
        );
        assert_eq!(c.transcript(Participants::Customer), "My bill.");
        assert_eq!(c.transcript(Participants::Agent), "Hello, how can I help?");
    }

    #[test]
    fn path_dates() {
        assert_eq!(
            date_in_path("s3://b/connect/x/CallRecordings/2019/07/22/d_20190322T23:23_UTC.wav"),
            NaiveDate::from_ymd_opt(2019, 7, 22)
        );
        assert_eq!(date_in_path("path to the json file in s3"), None);
    }
}
