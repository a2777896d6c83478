//! This crate's own small fixtures: role mapping, chat ordering, tolerance of new versions.

mod common;

use chrono::NaiveDate;
use contact_lens::{parse, parse_with, Channel, ParseError, ParseOptions, Participants, Role};

#[test]
fn v1_0_0_arn_ids_map_through_participants_and_turns_sort_by_offset() {
    let c = parse(
        &common::local_fixture("voice_v1.0.0_arn_participants.json"),
        None,
    )
    .unwrap();
    assert_eq!(c.version, "1.0.0");
    assert_eq!(c.contact_id, "c0ffee00-0000-4000-8000-000000000100");
    assert_eq!(c.language.as_deref(), Some("en-GB"));
    assert_eq!(c.contact_date, NaiveDate::from_ymd_opt(2020, 7, 17));
    let got: Vec<(Role, Option<u64>)> = c.turns.iter().map(|t| (t.role, t.begin_ms)).collect();
    assert_eq!(
        got,
        [
            (Role::Agent, Some(1000)),    // ARN listed in Participants as AGENT
            (Role::Customer, Some(5000)), // short id listed as CUSTOMER
            (Role::Agent, Some(8000)),    // an ARN not in Participants: agent ids are ARNs
            (Role::Other, Some(12000)),   // a short id not in Participants
        ]
    );
    assert_eq!(c.sentiment_agent, Some(2.5));
    assert_eq!(c.sentiment_customer, Some(-1.0));
    assert_eq!(c.categories, ["Billing"]);
    assert_eq!(
        c.transcript(Participants::All),
        "AGENT: Thanks for calling, how can I help? CUSTOMER: My card was charged twice. \
         AGENT: Supervisor here, I can refund the second charge. OTHER: Unmapped short id."
    );
    assert_eq!(
        c.transcript(Participants::Agent),
        "Thanks for calling, how can I help? Supervisor here, I can refund the second charge."
    );
    assert_eq!(
        c.transcript(Participants::Customer),
        "My card was charged twice."
    );
}

#[test]
fn chat_orders_by_absolute_time_and_drops_system_events_and_empty_messages() {
    let bytes = common::local_fixture("chat_unordered_with_system.json");
    let c = parse(&bytes, None).unwrap();
    assert_eq!(c.channel, Channel::Chat);
    assert_eq!(c.contact_date, NaiveDate::from_ymd_opt(2024, 3, 5));
    let got: Vec<(Role, Option<u64>, &str)> = c
        .turns
        .iter()
        .map(|t| (t.role, t.begin_ms, c.text(t)))
        .collect();
    // Times are relative to the first item (the EVENT at 23:59:40Z); +11:00 is honoured.
    assert_eq!(
        got,
        [
            (Role::Customer, Some(10_000), "Where is my parcel?"), // role from Participants
            (Role::Other, Some(15_000), "Let me find an agent."),  // CUSTOM_BOT
            (Role::Agent, Some(40_000), "It ships tomorrow."),
            (Role::Customer, Some(50_000), "Danke!"),
        ]
    );
    assert_eq!(c.duration_ms, Some(50_000));
    assert_eq!(
        c.summary.as_deref(),
        Some("Customer asked about a late delivery.")
    );
    assert_eq!(
        c.transcript(Participants::All),
        "CUSTOMER: Where is my parcel? OTHER: Let me find an agent. AGENT: It ships tomorrow. CUSTOMER: Danke!"
    );

    let with_system = parse_with(&bytes, None, ParseOptions::with_system(true)).unwrap();
    assert_eq!(with_system.turns.len(), 5);
    assert_eq!(with_system.turns[0].role, Role::System);
    assert_eq!(with_system.turns[0].begin_ms, Some(5_000));
}

#[test]
fn later_version_with_unknown_fields_parses() {
    let c = parse(
        &common::local_fixture("voice_future_version_unknown_fields.json"),
        None,
    )
    .unwrap();
    assert_eq!(c.version, "VOICE-2025-01-01");
    assert_eq!(c.channel, Channel::Voice);
    assert!(c.redacted);
    assert_eq!(c.language.as_deref(), Some("en-NZ"));
    assert_eq!(c.duration_ms, Some(20_000));
    assert_eq!(c.categories, ["Refund"]);
    assert_eq!(c.sentiment_agent, Some(1.5));
    // "n/a" is skipped; DetailsByParticipantRole supplies the customer's score.
    assert_eq!(c.sentiment_customer, Some(-0.5));
    assert_eq!(
        c.summary.as_deref(),
        Some("The customer asked for a refund; the agent approved it.")
    );
    assert_eq!(c.turns.len(), 3);
    assert_eq!(c.turns[1].begin_ms, Some(1200));
    assert_eq!(
        c.transcript(Participants::All),
        "OTHER: Welcome to Example Corp. CUSTOMER: Hi, I'd like a refund for order [PII]. \
         AGENT: Sure, I\u{2019}ve approved that refund."
    );
}

#[test]
fn other_made_up_versions_parse_and_nonsense_versions_do_not() {
    let text = String::from_utf8(common::local_fixture(
        "voice_future_version_unknown_fields.json",
    ))
    .unwrap();
    for v in ["1.2.0", "2.0", "VOICE-2031-12-31", "VOICE-2031-12-31.1"] {
        let doc = text.replace("VOICE-2025-01-01", v);
        let c = parse(doc.as_bytes(), None).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(c.version, v);
        assert_eq!(c.turns.len(), 3);
    }
    for v in ["", "latest", "VOICE", "v1"] {
        let doc = text.replace("VOICE-2025-01-01", v);
        assert_eq!(
            parse(doc.as_bytes(), None).unwrap_err(),
            ParseError::UnsupportedVersion {
                version: v.to_string()
            }
        );
    }
}

#[test]
fn channel_is_inferred_from_the_version_when_missing() {
    let text = String::from_utf8(common::local_fixture("chat_unordered_with_system.json")).unwrap();
    let doc = text.replace("\"Channel\": \"CHAT\",", "");
    assert!(!doc.contains("\"Channel\""));
    let c = parse(doc.as_bytes(), None).unwrap();
    assert_eq!(c.channel, Channel::Chat);
    assert_eq!(c.turns.len(), 4);
}

#[test]
fn unknown_channel_is_a_typed_error() {
    let text = String::from_utf8(common::local_fixture("chat_unordered_with_system.json")).unwrap();
    let doc = text.replace("\"Channel\": \"CHAT\"", "\"Channel\": \"EMAIL\"");
    assert_eq!(
        parse(doc.as_bytes(), None).unwrap_err(),
        ParseError::UnsupportedChannel {
            channel: "EMAIL".into()
        }
    );
}

#[test]
fn contact_serialises_to_json() {
    let c = parse(
        &common::local_fixture("voice_v1.0.0_arn_participants.json"),
        None,
    )
    .unwrap();
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["channel"], "VOICE");
    assert_eq!(v["contact_date"], "2020-07-17");
    assert_eq!(v["turns"][0]["role"], "AGENT");
}
