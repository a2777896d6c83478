//! Every file in `../shared/fixtures/contact-lens/`, with values read from the files.

mod common;

use chrono::NaiveDate;
use contact_lens::{parse, parse_with, Channel, ParseError, ParseOptions, Participants, Role};

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

const DOC_RAW_KEY: &str = "connect/example-instance/Analysis/Voice/2022/04/15/aaaaaaaa-1111-2222-3333-444444444444_analysis_2022-04-15T10:00:00Z.json";
const DOC_REDACTED_KEY: &str = "connect/example-instance/Analysis/Voice/Redacted/2022/04/15/aaaaaaaa-1111-2222-3333-444444444444_analysis_redacted_2022-04-15T10:00:00Z.json";

#[test]
fn voice_raw_v1_1_0_doc_example_takes_contact_id_from_key() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(&shared, "voice_raw_v1.1.0_doc-2022-04-15.json");
    let c = parse(&bytes, Some(DOC_RAW_KEY)).unwrap();
    assert_eq!(c.contact_id, "aaaaaaaa-1111-2222-3333-444444444444");
    assert_eq!(c.instance_id, None);
    assert_eq!(c.channel, Channel::Voice);
    assert!(!c.redacted);
    assert_eq!(c.version, "1.1.0");
    assert_eq!(c.language.as_deref(), Some("en-US"));
    assert_eq!(c.contact_date, date(2022, 4, 15));
    assert_eq!(c.duration_ms, Some(32110));
    assert_eq!(c.turns.len(), 10);
    assert_eq!(c.sentiment_agent, Some(0.0));
    assert_eq!(c.sentiment_customer, Some(3.1));
    assert!(c.categories.is_empty());
    assert_eq!(c.summary, None);
    assert_eq!(c.turns[0].role, Role::Agent);
    assert_eq!(c.turns[0].begin_ms, Some(0));
    assert_eq!(c.turns[0].end_ms, Some(90));
    assert_eq!(c.turns[1].role, Role::Customer);
    let all = c.transcript(Participants::All);
    assert!(all.starts_with(
        "AGENT: Okay. CUSTOMER: Just hello. My name is Peter and help. AGENT: Hello. Peter, how can I help you?"
    ));
    assert!(all.ends_with("CUSTOMER: Thank you. Sir. Have a nice evening."));
    let customer = c.transcript(Participants::Customer);
    assert!(customer.starts_with("Just hello. My name is Peter and help. I need to cancel."));
    assert!(!customer.contains("AGENT") && !customer.contains("CUSTOMER:"));
    assert!(c
        .transcript(Participants::Agent)
        .starts_with("Okay. Hello. Peter, how can I help you? That sounds very bad."));
}

#[test]
fn voice_raw_v1_1_0_doc_example_without_key_has_no_contact_id() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(&shared, "voice_raw_v1.1.0_doc-2022-04-15.json");
    assert_eq!(
        parse(&bytes, None).unwrap_err(),
        ParseError::MissingContactId
    );
    // A key that is not an analysis key is ignored, not trusted.
    let wav = "connect/x/CallRecordings/2022/04/15/aaaaaaaa-1111_20220415T10:00_UTC.wav";
    assert_eq!(
        parse(&bytes, Some(wav)).unwrap_err(),
        ParseError::MissingContactId
    );
}

#[test]
fn voice_redacted_v1_1_0_doc_example() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(&shared, "voice_redacted_v1.1.0_doc-2022-04-15.json");
    let c = parse(&bytes, Some(DOC_REDACTED_KEY)).unwrap();
    assert_eq!(c.contact_id, "aaaaaaaa-1111-2222-3333-444444444444");
    assert!(c.redacted);
    assert_eq!(c.version, "1.1.0");
    assert_eq!(c.turns.len(), 10);
    assert_eq!(
        c.text(&c.turns[1]),
        "Just hello. My name is [PII] and help."
    );
    assert!(c
        .transcript(Participants::All)
        .contains("AGENT: Hello. [PII], how can I help you?"));
    assert!(!c.transcript(Participants::All).contains("Peter"));
}

#[test]
fn voice_redacted_file_wins_over_a_raw_key() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(&shared, "voice_redacted_v1.1.0_doc-2022-04-15.json");
    // ContentMetadata.Output says Redacted: the file's word beats the key's folder.
    assert!(parse(&bytes, Some(DOC_RAW_KEY)).unwrap().redacted);
}

#[test]
fn voice_raw_voice_2022_11_30_doc_example() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(&shared, "voice_raw_VOICE-2022-11-30_doc-2023-02-18.json");
    let key = "Analysis/Voice/2023/02/18/bbbbbbbb-0000-4000-8000-000000000001_analysis_2023-02-18T01:02:03Z.json";
    let c = parse(&bytes, Some(key)).unwrap();
    assert_eq!(c.contact_id, "bbbbbbbb-0000-4000-8000-000000000001");
    assert_eq!(c.version, "VOICE-2022-11-30");
    assert_eq!(c.channel, Channel::Voice);
    assert!(!c.redacted);
    assert_eq!(c.language.as_deref(), Some("en-US"));
    assert_eq!(c.contact_date, date(2023, 2, 18));
    assert_eq!(c.turns.len(), 10);
    assert!(c
        .transcript(Participants::Customer)
        .contains("I need to cancel. I want to cancel my plan subscription."));
}

#[test]
fn scv_real_capture_v1_1_0_with_overlapping_turns() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(
        &shared,
        "scv_voice_raw_v1.1.0_7c77422d_analysis_2022-06-22.json",
    );
    let c = parse(&bytes, None).unwrap();
    assert_eq!(c.contact_id, "7c77422d-f9ba-4111-ad48-b2f5dadf854a");
    assert_eq!(
        c.instance_id.as_deref(),
        Some("5f046746-5931-45cc-a614-43b75eca2a5f")
    );
    assert_eq!(c.channel, Channel::Voice);
    assert!(!c.redacted);
    assert_eq!(c.version, "1.1.0");
    assert_eq!(c.language.as_deref(), Some("en-US"));
    // No key: the date comes from the recording path in CustomerMetadata.InputS3Uri.
    assert_eq!(c.contact_date, date(2022, 6, 22));
    assert_eq!(c.duration_ms, Some(86727));
    assert_eq!(c.turns.len(), 15);
    assert_eq!(c.sentiment_customer, Some(0.8));
    assert_eq!(c.sentiment_agent, Some(0.0));
    let begins: Vec<u64> = c.turns.iter().map(|t| t.begin_ms.unwrap()).collect();
    assert!(begins.windows(2).all(|w| w[0] <= w[1]), "{begins:?}");
    // Turns 12490..13345 (customer) and 12537..13017 (agent) overlap.
    assert_eq!(c.turns[4].role, Role::Customer);
    assert_eq!(c.text(&c.turns[4]), "I hear my voice.");
    assert_eq!(c.turns[5].role, Role::Agent);
    assert_eq!(c.text(&c.turns[5]), "Bye.");
    assert!(c
        .transcript(Participants::All)
        .starts_with("AGENT: Mhm. CUSTOMER: Mhm. AGENT: Okay? Hoping CUSTOMER: I hope you got"));
    assert!(c
        .transcript(Participants::All)
        .ends_with("AGENT: Call back. Bye bye."));
}

#[test]
fn ciopulse_voice_redacted_sanitised_live() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(
        &shared,
        "ciopulse_voice_redacted_v1.1.0_sanitised-live_2026-09-16.json",
    );
    let c = parse(&bytes, None).unwrap();
    assert_eq!(c.contact_id, "3f1c9a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b");
    assert_eq!(
        c.instance_id.as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert!(c.redacted);
    assert_eq!(c.version, "1.1.0");
    assert_eq!(c.language.as_deref(), Some("en-AU"));
    assert_eq!(c.contact_date, date(2026, 9, 16));
    assert_eq!(c.duration_ms, Some(91900));
    assert_eq!(c.turns.len(), 7);
    assert_eq!(c.sentiment_customer, Some(-5.0));
    assert_eq!(c.sentiment_agent, Some(0.0));
    assert_eq!(
        c.transcript(Participants::Customer),
        "Oh man, 2 days? That's such a long time. I need access today, my email is [PII]. Then I need to escalate this, this is not acceptable."
    );
    assert!(c
        .transcript(Participants::All)
        .starts_with("AGENT: Hello. AGENT: Um, can you hear me?"));
}

#[test]
fn ciopulse_voice_redacted_with_the_event_key() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(
        &shared,
        "ciopulse_voice_redacted_v1.1.0_sanitised-live_2026-09-16.json",
    );
    let key = "connect/example-instance/Analysis/Voice/Redacted/2026/09/02/3f1c9a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b_analysis_redacted_2026-09-02T00:17:10Z.json";
    let c = parse(&bytes, Some(key)).unwrap();
    // The key's folder date wins over the recording path's date.
    assert_eq!(c.contact_date, date(2026, 9, 2));
    assert!(c.redacted);
}

#[test]
fn chat_raw_doc_example_messages_only_ordered_without_system() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(&shared, "chat_raw_CHAT-2022-11-30_doc-2023-02-18.json");
    let key = "connect/i/Analysis/Chat/2022/10/27/b49644f6-672f-445c-b209-f76b36482830_analysis_2022-10-27T03:40:00Z.json";
    let c = parse(&bytes, Some(key)).unwrap();
    assert_eq!(c.contact_id, "b49644f6-672f-445c-b209-f76b36482830");
    assert_eq!(
        c.instance_id.as_deref(),
        Some("f23fc323-3d6d-48aa-95dc-EXAMPLE012")
    );
    assert_eq!(c.channel, Channel::Chat);
    assert!(!c.redacted);
    assert_eq!(c.version, "CHAT-2022-11-30");
    assert_eq!(c.language.as_deref(), Some("en-US"));
    assert_eq!(c.contact_date, date(2022, 10, 27));
    // 35 items: 4 EVENTs, 3 SYSTEM messages, 28 agent/customer messages.
    assert_eq!(c.turns.len(), 28);
    assert!(c.turns.iter().all(|t| t.role != Role::System));
    assert_eq!(c.categories, vec!["agent-intro".to_string()]);
    // serde_json's default float parsing may be one ulp off the shortest representation.
    assert!((c.sentiment_agent.unwrap() - 1.1538461538461537).abs() < 1e-12);
    assert_eq!(c.sentiment_customer, Some(0.0));
    // No TotalConversationDurationMillis: the span of AbsoluteTime, 03:31:50.735 to 03:34:43.192.
    assert_eq!(c.duration_ms, Some(172_457));
    assert_eq!(c.turns[0].role, Role::Agent);
    assert_eq!(c.turns[0].begin_ms, Some(12_727));
    assert_eq!(c.turns[0].end_ms, None);
    assert_eq!(c.turns[1].begin_ms, Some(17_367));
    let all = c.transcript(Participants::All);
    assert!(all.starts_with(
        "AGENT: Hello, thanks for reaching Example Corp. This is Jane. How may I help you? CUSTOMER: I'd like to see if I can get a refund"
    ));
    assert!(all.ends_with("CUSTOMER: Nope! AGENT: Ok great! Have a great day."));
    assert!(!all.contains("placed in queue"));

    let with_system = parse_with(&bytes, Some(key), ParseOptions::with_system(true)).unwrap();
    assert_eq!(with_system.turns.len(), 31);
    assert_eq!(with_system.turns[0].role, Role::System);
    assert!(with_system
        .transcript(Participants::All)
        .starts_with("SYSTEM: Hello, thanks for contacting us."));
}

#[test]
fn ciopulse_handwritten_chat_tolerated() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(
        &shared,
        "ciopulse_chat_redacted_CHAT-2022-11-30_prelive-handwritten.json",
    );
    let c = parse(&bytes, None).unwrap();
    assert_eq!(c.contact_id, "7d2e4f60-8a1b-4c3d-9e5f-0a1b2c3d4e5f");
    assert_eq!(c.channel, Channel::Chat);
    assert!(c.redacted);
    assert_eq!(c.version, "CHAT-2022-11-30");
    assert_eq!(c.language.as_deref(), Some("en-AU"));
    assert_eq!(c.contact_date, date(2026, 9, 2));
    assert_eq!(c.duration_ms, Some(172_000));
    // Six MESSAGE items; the attachment (no Content) is skipped.
    assert_eq!(c.turns.len(), 5);
    assert_eq!(c.sentiment_customer, Some(0.5));
    assert_eq!(c.sentiment_agent, Some(1.2));
    assert_eq!(
        c.summary.as_deref(),
        Some("Customer's password had expired. The agent sent a reset link and the customer confirmed it worked.")
    );
    assert_eq!(
        c.transcript(Participants::Customer),
        "hi, my password expired and I can't log into the portal. my number is [PII] if you need it got it, worked straight away. thanks! no that's all, cheers"
    );
}

#[test]
fn realtime_segments_are_rejected() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for name in [
        "scv_realtime_kinesis_segment_v1.0.0_Utterance.json",
        "scv_realtime_kinesis_segment_v1.0.0_Categories.json",
    ] {
        let err = parse(&common::fixture(&shared, name), None).unwrap_err();
        assert_eq!(err, ParseError::RealtimeSegment, "{name}");
        assert!(err.reason().contains("real-time"), "{}", err.reason());
    }
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
    assert_eq!(c.version, "1.0.0");
    assert_eq!(c.contact_id, "11111111-1111-1111-1111-11111111111");
    assert_eq!(
        c.instance_id.as_deref(),
        Some("eeeeeee-eeee-eeee-eeee-eeeeeeeeeeee")
    );
    assert_eq!(c.channel, Channel::Voice);
    assert!(!c.redacted);
    assert_eq!(c.language.as_deref(), Some("en-US"));
    assert_eq!(c.contact_date, date(2019, 7, 22));
    assert_eq!(c.duration_ms, Some(7060));
    assert_eq!(
        c.categories,
        vec!["Swearing".to_string(), "Interruptions".to_string()]
    );
    // OverallSentiment is keyed by participant id: agent id 3, customer id 4.2.
    assert_eq!(c.sentiment_agent, Some(3.0));
    assert_eq!(c.sentiment_customer, Some(4.2));
    assert_eq!(c.turns.len(), 3);
    let roles: Vec<Role> = c.turns.iter().map(|t| t.role).collect();
    // Ordered by BeginOffsetMillis: 0 (agent), 500 (customer), 3000 (customer).
    assert_eq!(roles, [Role::Agent, Role::Customer, Role::Customer]);
    assert_eq!(c.turns[1].begin_ms, Some(500));
    // The multi-line Content is one line.
    assert_eq!(
        c.text(&c.turns[1]),
        "I'm having trouble submitting the application, number AAAAAAAA on the portal. I tried but couldn't connect to my POC on the portal. So, I'm calling on this toll free number"
    );
    assert_eq!(
        c.transcript(Participants::Agent),
        "Hello, my name is Jane, may I have your email id?"
    );
    let all = c.transcript(Participants::All);
    assert!(all.starts_with(
        "AGENT: Hello, my name is Jane, may I have your email id? CUSTOMER: I'm having trouble"
    ));
    assert!(all.ends_with("CUSTOMER: My email id is jane@examplecorp.com."));
    assert!(!all.contains('\n'));
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
