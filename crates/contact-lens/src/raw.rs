//! Lean, borrowed serde views of a post-call analysis document: only the fields we use.
//!
//! Each struct is declared once, as a table of `"JsonKey" => field: Type` rows given to
//! `raw_structs!`, which derives both the serde reading (the reference) and the fast reader's
//! field dispatch ([`crate::fast`]). How a value is read follows from the field's type, by the
//! same rule on both paths ([`Field`]).
//!
//! Unknown fields are skipped (never `deny_unknown_fields`); strings borrow from the input
//! unless they contain escapes. Scalars are read leniently: a string field holding a number,
//! or an offset written as `1.0`, does not fail the document.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::fast::{Object, Reader, Seen};

pub(crate) type Str<'a> = Cow<'a, str>;

/// Declares structs from tables of their fields, each row `"JsonKey" => field: Type,`, and
/// derives both ways of reading each from its one table:
///
/// - serde: `#[derive(Deserialize, Default)]`, every field renamed to its key and read with
///   [`Field::de`]; a missing key leaves the field's default (`None`).
/// - the fast reader: [`Object::field`], a `match` on the key that reads the value with
///   [`Field::fast`] and, as serde does, fails on a repeated key (its bit in `seen` is the
///   field's position in the table).
///
/// It also makes `Option<Struct>` a [`Field`] (`null` or an object), so tables can nest.
macro_rules! raw_structs {
    ($(
        $(#[$meta:meta])*
        pub(crate) struct $name:ident<'a> {
            $($key:literal => $field:ident: $ty:ty,)*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Deserialize, Default)]
        #[cfg_attr(test, derive(Debug))]
        // Strings borrow from the input: said once here, as `#[serde(borrow)]` cannot be put
        // on every field (an `Option<u64>` has no lifetime to borrow).
        #[serde(default, bound(deserialize = "'de: 'a"))]
        pub(crate) struct $name<'a> {
            $(
                #[serde(rename = $key, deserialize_with = "Field::de")]
                pub $field: $ty,
            )*
        }

        impl<'a> Object<'a> for $name<'a> {
            fn field(&mut self, p: &mut Reader<'a>, key: &str, seen: &mut Seen) -> Option<()> {
                #[allow(non_camel_case_types)]
                enum Bit {
                    $($field,)*
                }
                match key {
                    $($key => {
                        seen.first(Bit::$field as u32)?;
                        self.$field = Field::fast(p)?;
                    })*
                    _ => p.skip()?,
                }
                Some(())
            }
        }

        impl<'a> Field<'a> for Option<$name<'a>> {
            fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Option::deserialize(d)
            }
            fn fast(p: &mut Reader<'a>) -> Option<Self> {
                p.or_null(Reader::record)
            }
        }
    )*};
}

/// How a value of a field's type is read, on both paths. `fast` must give what `de` gives
/// on the same text, or give up (`None`) and leave the document to serde_json.
pub(crate) trait Field<'a>: Sized {
    /// With serde_json: the reference.
    fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    /// With the fast reader, the cursor on the value.
    fn fast(p: &mut Reader<'a>) -> Option<Self>;
}

/// A lenient string: a string, else `None` (any other value is skipped).
impl<'a> Field<'a> for Option<Str<'a>> {
    fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lstr(d)
    }
    fn fast(p: &mut Reader<'a>) -> Option<Self> {
        p.lstr()
    }
}

/// Lenient milliseconds: a number or a string holding one, rounded; else `None`.
impl<'a> Field<'a> for Option<u64> {
    fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lms(d)
    }
    fn fast(p: &mut Reader<'a>) -> Option<Self> {
        p.lms()
    }
}

/// A presence marker: `Some` for any value but `null`.
impl<'a> Field<'a> for Option<IgnoredAny> {
    fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::deserialize(d)
    }
    fn fast(p: &mut Reader<'a>) -> Option<Self> {
        p.or_null(|p| p.skip().map(|()| IgnoredAny))
    }
}

/// `null` or an array of objects.
impl<'a> Field<'a> for Option<Vec<RawParticipant<'a>>> {
    fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::deserialize(d)
    }
    fn fast(p: &mut Reader<'a>) -> Option<Self> {
        p.or_null(|p| p.vec(Reader::record))
    }
}

/// `null` or an array of lenient strings.
impl<'a> Field<'a> for Option<Vec<LStr<'a>>> {
    fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::deserialize(d)
    }
    fn fast(p: &mut Reader<'a>) -> Option<Self> {
        p.or_null(|p| p.vec(|p| p.lstr().map(LStr)))
    }
}

/// `null` or the transcript array.
impl<'a> Field<'a> for Option<Items<'a>> {
    fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::deserialize(d)
    }
    fn fast(p: &mut Reader<'a>) -> Option<Self> {
        p.or_null(Reader::items)
    }
}

/// `null`, the scores object, or (any other value) no scores.
impl<'a> Field<'a> for Option<RawOverallSentiment<'a>> {
    fn de<'de: 'a, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::deserialize(d)
    }
    fn fast(p: &mut Reader<'a>) -> Option<Self> {
        p.or_null(Reader::overall)
    }
}

raw_structs! {
    /// The top level. Kind markers (`EventType`, `Segments`, `Records`, ...) are read only for
    /// their presence, so detecting the kind costs nothing beyond the one parse.
    pub(crate) struct RawDoc<'a> {
        "Version" => version: Option<Str<'a>>,
        "Channel" => channel: Option<Str<'a>>,
        "JobStatus" => job_status: Option<Str<'a>>,
        "LanguageCode" => language_code: Option<Str<'a>>,
        "ContentMetadata" => content_metadata: Option<RawContentMetadata<'a>>,
        "CustomerMetadata" => customer_metadata: Option<RawCustomerMetadata<'a>>,
        "Participants" => participants: Option<Vec<RawParticipant<'a>>>,
        "Categories" => categories: Option<RawCategories<'a>>,
        "ConversationCharacteristics" =>
            conversation_characteristics: Option<RawCharacteristics<'a>>,
        "Transcript" => transcript: Option<Items<'a>>,
        // Presence-only markers of other document kinds.
        "EventType" => event_type: Option<IgnoredAny>,
        "Segments" => segments: Option<IgnoredAny>,
        "JobName" => job_name: Option<IgnoredAny>,
        "Records" => records: Option<IgnoredAny>,
        "detail-type" => detail_type: Option<IgnoredAny>,
        "jobName" => transcribe_job_name: Option<IgnoredAny>,
        "results" => transcribe_results: Option<IgnoredAny>,
        "ContactId" => contact_id: Option<IgnoredAny>,
        "InitiationMethod" => initiation_method: Option<IgnoredAny>,
    }

    pub(crate) struct RawContentMetadata<'a> {
        "Output" => output: Option<Str<'a>>,
    }

    pub(crate) struct RawCustomerMetadata<'a> {
        "ContactId" => contact_id: Option<Str<'a>>,
        "InstanceId" => instance_id: Option<Str<'a>>,
        "InputS3Uri" => input_s3_uri: Option<Str<'a>>,
    }

    pub(crate) struct RawParticipant<'a> {
        "ParticipantId" => participant_id: Option<Str<'a>>,
        "ParticipantRole" => participant_role: Option<Str<'a>>,
    }

    pub(crate) struct RawCategories<'a> {
        "MatchedCategories" => matched_categories: Option<Vec<LStr<'a>>>,
    }

    pub(crate) struct RawCharacteristics<'a> {
        "TotalConversationDurationMillis" => total_conversation_duration_millis: Option<u64>,
        "Sentiment" => sentiment: Option<RawSentiment<'a>>,
        "ContactSummary" => contact_summary: Option<RawContactSummary<'a>>,
    }

    pub(crate) struct RawSentiment<'a> {
        "OverallSentiment" => overall_sentiment: Option<RawOverallSentiment<'a>>,
    }

    pub(crate) struct RawContactSummary<'a> {
        "PostContactSummary" => post_contact_summary: Option<RawSummary<'a>>,
        "OverallSummary" => overall_summary: Option<RawSummary<'a>>,
        "AutoGenerated" => auto_generated: Option<RawAutoGenerated<'a>>,
    }

    pub(crate) struct RawAutoGenerated<'a> {
        "PostContactSummary" => post_contact_summary: Option<RawSummary<'a>>,
        "OverallSummary" => overall_summary: Option<RawSummary<'a>>,
    }

    pub(crate) struct RawSummary<'a> {
        "Content" => content: Option<Str<'a>>,
        "Status" => status: Option<Str<'a>>,
    }

    /// One transcript item: a voice turn, or a chat item (MESSAGE, EVENT, ...).
    pub(crate) struct RawItem<'a> {
        "ParticipantId" => participant_id: Option<Str<'a>>,
        "ParticipantRole" => participant_role: Option<Str<'a>>,
        "Content" => content: Option<Str<'a>>,
        "BeginOffsetMillis" => begin_offset_millis: Option<u64>,
        "EndOffsetMillis" => end_offset_millis: Option<u64>,
        "Type" => kind: Option<Str<'a>>,
        "AbsoluteTime" => absolute_time: Option<Str<'a>>,
    }
}

/// `OverallSentiment` in all its shapes: `{ "<participant id or role>": score, ... }` (voice,
/// 2020 to now), with a nested `DetailsByParticipantRole: { "AGENT": score }` (chat, 2022-11-30),
/// and other nested objects (`DetailsByInteraction`) that we skip.
///
/// Not in `raw_structs!`: its keys are data (participant ids and roles), not field names, so
/// both paths read it by hand (its `Deserialize` below, and the fast reader's `overall`).
#[derive(Default)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct RawOverallSentiment<'a> {
    pub by_key: Vec<(Str<'a>, f64)>,
    pub by_role: Vec<(Str<'a>, f64)>,
}

/// The `Transcript` array, collected with a head start on capacity (JSON gives no length).
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Items<'a>(pub Vec<RawItem<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Items<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of transcript items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).max(32));
                while let Some(item) = seq.next_element()? {
                    v.push(item);
                }
                Ok(Items(v))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A string, or `None` for anything else (number, null, object, ...), which is skipped.
#[cfg_attr(test, derive(Debug))]
pub(crate) struct LStr<'a>(pub Option<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for LStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LStrVisitor).map(LStr)
    }
}

fn lstr<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Str<'a>>, D::Error> {
    d.deserialize_any(LStrVisitor)
}

struct LStrVisitor;

impl<'de> Visitor<'de> for LStrVisitor {
    type Value = Option<Str<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// A number, read leniently as `f64`; `None` for anything else (which is skipped).
struct LNum(Option<f64>);

impl<'de> Deserialize<'de> for LNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor)
            .map(|n| LNum(n.map(Num::as_f64)))
    }
}

/// A number as serde_json hands it to a visitor.
#[derive(Clone, Copy)]
pub(crate) enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::U(u) => u as f64,
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }

    /// Milliseconds: negative or non-finite values are dropped, fractions rounded.
    pub(crate) fn as_ms(self) -> Option<u64> {
        match self {
            Num::U(u) => Some(u),
            Num::I(i) => u64::try_from(i).ok(),
            Num::F(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Some(f.round() as u64),
            Num::F(_) => None,
        }
    }
}

struct NumVisitor;

impl<'de> Visitor<'de> for NumVisitor {
    type Value = Option<Num>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Num::U(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Num::I(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Num::F(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.trim().parse::<f64>().ok().map(Num::F))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

fn lms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(d.deserialize_any(NumVisitor)?.and_then(Num::as_ms))
}

impl<'de: 'a, 'a> Deserialize<'de> for RawOverallSentiment<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OverallVisitor)
    }
}

struct OverallVisitor;

impl<'de> Visitor<'de> for OverallVisitor {
    type Value = RawOverallSentiment<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OverallSentiment object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = RawOverallSentiment::default();
        while let Some(LStr(key)) = map.next_key::<LStr<'de>>()? {
            match key {
                Some(k) if k == "DetailsByParticipantRole" => {
                    let ByRole(v) = map.next_value::<ByRole<'de>>()?;
                    out.by_role = v;
                }
                Some(k) => {
                    if let LNum(Some(n)) = map.next_value::<LNum>()? {
                        out.by_key.push((k, n));
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawOverallSentiment::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawOverallSentiment::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawOverallSentiment::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawOverallSentiment::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(RawOverallSentiment::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(RawOverallSentiment::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(RawOverallSentiment::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RawOverallSentiment::default())
    }
}

/// `{ "ROLE": score, ... }`, skipping non-numeric values.
struct ByRole<'a>(Vec<(Str<'a>, f64)>);

impl<'de: 'a, 'a> Deserialize<'de> for ByRole<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ByRole<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of role to score")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(LStr(key)) = map.next_key::<LStr<'de>>()? {
                    let LNum(n) = map.next_value::<LNum>()?;
                    if let (Some(k), Some(n)) = (key, n) {
                        out.push((k, n));
                    }
                }
                Ok(ByRole(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ByRole(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ByRole(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ByRole(Vec::new()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ByRole(Vec::new()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ByRole(Vec::new()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ByRole(Vec::new()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ByRole(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}
