//! Every file in `../shared/fixtures/contact-lens/`: each contact compared with its golden
//! summary in `tests/fixtures/golden/` (`UPDATE_GOLDEN=1` rewrites them; review the diff),
//! and the typed errors of the files that are not contacts.

mod common;

use contact_lens::{parse, parse_with, ParseError, ParseOptions};

const DOC_RAW_KEY: &str = "connect/example-instance/Analysis/Voice/2022/04/15/aaaaaaaa-1111-2222-3333-444444444444_analysis_2022-04-15T10:00:00Z.json";
const DOC_REDACTED_KEY: &str = "connect/example-instance/Analysis/Voice/Redacted/2022/04/15/aaaaaaaa-1111-2222-3333-444444444444_analysis_redacted_2022-04-15T10:00:00Z.json";
const VOICE_2022_KEY: &str = "Analysis/Voice/2023/02/18/bbbbbbbb-0000-4000-8000-000000000001_analysis_2023-02-18T01:02:03Z.json";
const CIOPULSE_EVENT_KEY: &str = "connect/example-instance/Analysis/Voice/Redacted/2026/09/02/3f1c9a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b_analysis_redacted_2026-09-02T00:17:10Z.json";
const CHAT_KEY: &str = "connect/i/Analysis/Chat/2022/10/27/b49644f6-672f-445c-b209-f76b36482830_analysis_2022-10-27T03:40:00Z.json";

/// One parse: the golden file's name, the shared fixture, the S3 key, and whether chat
/// `SYSTEM` messages are kept.
type Case = (&'static str, &'static str, Option<&'static str>, bool);

const CASES: &[Case] = &[
    // The contact id comes from the key.
    (
        "voice_raw_v1.1.0_doc",
        "voice_raw_v1.1.0_doc-2022-04-15.json",
        Some(DOC_RAW_KEY),
        false,
    ),
    (
        "voice_redacted_v1.1.0_doc",
        "voice_redacted_v1.1.0_doc-2022-04-15.json",
        Some(DOC_REDACTED_KEY),
        false,
    ),
    // ContentMetadata.Output says Redacted: the file's word beats the key's folder.
    (
        "voice_redacted_v1.1.0_doc_raw_key",
        "voice_redacted_v1.1.0_doc-2022-04-15.json",
        Some(DOC_RAW_KEY),
        false,
    ),
    (
        "voice_raw_VOICE-2022-11-30_doc",
        "voice_raw_VOICE-2022-11-30_doc-2023-02-18.json",
        Some(VOICE_2022_KEY),
        false,
    ),
    // No key: the date comes from the recording path in CustomerMetadata.InputS3Uri. Turns
    // 12490..13345 (customer) and 12537..13017 (agent) overlap.
    (
        "scv_voice_raw_v1.1.0_7c77422d",
        "scv_voice_raw_v1.1.0_7c77422d_analysis_2022-06-22.json",
        None,
        false,
    ),
    (
        "ciopulse_voice_redacted_v1.1.0",
        "ciopulse_voice_redacted_v1.1.0_sanitised-live_2026-09-16.json",
        None,
        false,
    ),
    // The key's folder date (2026-09-02) wins over the recording path's date.
    (
        "ciopulse_voice_redacted_v1.1.0_event_key",
        "ciopulse_voice_redacted_v1.1.0_sanitised-live_2026-09-16.json",
        Some(CIOPULSE_EVENT_KEY),
        false,
    ),
    // 35 items: 4 EVENTs, 3 SYSTEM messages, 28 agent/customer messages. No
    // TotalConversationDurationMillis: the duration is the span of AbsoluteTime, 03:31:50.735
    // to 03:34:43.192. The agent's sentiment, 1.1538461538461537 in the file, is what
    // serde_json's default float parsing gives (one ulp below).
    (
        "chat_raw_CHAT-2022-11-30_doc",
        "chat_raw_CHAT-2022-11-30_doc-2023-02-18.json",
        Some(CHAT_KEY),
        false,
    ),
    // The same with its 3 SYSTEM messages.
    (
        "chat_raw_CHAT-2022-11-30_doc_with_system",
        "chat_raw_CHAT-2022-11-30_doc-2023-02-18.json",
        Some(CHAT_KEY),
        true,
    ),
    // Six MESSAGE items; the attachment (no Content) is skipped.
    (
        "ciopulse_chat_redacted_CHAT-2022-11-30",
        "ciopulse_chat_redacted_CHAT-2022-11-30_prelive-handwritten.json",
        None,
        false,
    ),
];

#[test]
fn every_shared_contact_matches_its_golden_summary() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for &(golden, fixture, key, with_system) in CASES {
        let bytes = common::fixture(&shared, fixture);
        let c = parse_with(&bytes, key, ParseOptions::with_system(with_system))
            .unwrap_or_else(|e| panic!("{golden}: {e}"));
        common::check_invariants(&c, with_system);
        common::check_golden(golden, &c);
    }
}

#[test]
fn shared_files_that_are_not_usable_contacts_give_typed_errors() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    // A key that is not an analysis key is ignored, not trusted.
    let wav = "connect/x/CallRecordings/2022/04/15/aaaaaaaa-1111_20220415T10:00_UTC.wav";
    let doc = "voice_raw_v1.1.0_doc-2022-04-15.json";
    let cases = [
        (doc, None, ParseError::MissingContactId),
        (doc, Some(wav), ParseError::MissingContactId),
        (
            "scv_realtime_kinesis_segment_v1.0.0_Utterance.json",
            None,
            ParseError::RealtimeSegment,
        ),
        (
            "scv_realtime_kinesis_segment_v1.0.0_Categories.json",
            None,
            ParseError::RealtimeSegment,
        ),
    ];
    for (name, key, expected) in cases {
        let err = parse(&common::fixture(&shared, name), key).unwrap_err();
        assert_eq!(err, expected, "{name} with key {key:?}");
    }
    assert!(ParseError::RealtimeSegment.reason().contains("real-time"));
}

#[test]
fn v1_0_0_doc_example_as_published_is_malformed() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(&shared, "voice_raw_v1.0.0_doc-2020-07-17.jsonc");
    match parse(&bytes, None).unwrap_err() {
        // The first `//` comment, on line 4.
        ParseError::Malformed { line, column, msg } => {
            assert_eq!(line, 4, "{msg}");
            assert!(column > 1);
            assert!(!msg.is_empty());
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn v1_0_0_doc_example_repaired_maps_arn_and_short_ids_to_roles() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let text = String::from_utf8(common::fixture(
        &shared,
        "voice_raw_v1.0.0_doc-2020-07-17.jsonc",
    ))
    .unwrap();
    let fixed = repair_2020_doc(&text);
    let c = parse(fixed.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"));
    // OverallSentiment is keyed by participant id: agent id 3, customer id 4.2. Turns are
    // ordered by BeginOffsetMillis: 0 (agent), 500 (customer), 3000 (customer); the
    // multi-line Content of the second is one line.
    common::check_invariants(&c, false);
    common::check_golden("voice_raw_v1.0.0_doc_repaired", &c);
}

/// Repairs the 2020 documentation example into JSON, in test code only: smart quotes, `//`
/// comments, raw newlines inside a string, a missing `}`, missing and trailing commas.
fn repair_2020_doc(src: &str) -> String {
    let mut s = src.replace(['\u{201c}', '\u{201d}'], "\"");
    // The second turn is never closed: its Redaction object ends with `},` and the next turn starts.
    let a = s.find(":  944").expect("anchor 944");
    let b = a + s[a..].find(']').unwrap();
    let c = b + s[b..].find('}').unwrap();
    s.insert(c, '}');

    // Pass 1: drop comments, escape raw newlines inside strings.
    let mut p1 = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut in_str = false;
    while let Some(ch) = chars.next() {
        if in_str {
            match ch {
                '\\' => {
                    p1.push(ch);
                    p1.extend(chars.next());
                }
                '"' => {
                    in_str = false;
                    p1.push(ch);
                }
                '\n' => p1.push_str("\\n"),
                _ => p1.push(ch),
            }
        } else if ch == '"' {
            in_str = true;
            p1.push(ch);
        } else if ch == '/' && chars.peek() == Some(&'/') {
            while chars.peek().is_some_and(|&c| c != '\n') {
                chars.next();
            }
        } else {
            p1.push(ch);
        }
    }

    // Pass 2: remove trailing commas, insert missing ones between a value and the next member.
    let mut out = String::with_capacity(p1.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut last_sig: Option<(char, usize)> = None; // last significant char outside strings, and its end
    for ch in p1.chars() {
        if in_str {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_str = false;
                last_sig = Some(('"', out.len()));
            }
            continue;
        }
        if ch.is_whitespace() {
            out.push(ch);
            continue;
        }
        match (last_sig, ch) {
            (Some((',', end)), ']' | '}') => {
                out.remove(end - 1);
            }
            (Some((prev, end)), '"' | '{')
                if prev == '"' || prev == '}' || prev == ']' || prev.is_ascii_digit() =>
            {
                out.insert(end, ',');
            }
            _ => {}
        }
        out.push(ch);
        if ch == '"' {
            in_str = true;
        } else {
            last_sig = Some((ch, out.len()));
        }
    }
    out
}
