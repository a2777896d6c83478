//! The S3 key grammar and notification-key decoding.

mod common;

use chrono::NaiveDate;
use contact_lens::{decode_notification_key, parse_file_name, parse_key, Channel, KeyInfo};

const ID: &str = "3f1c9a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b";

fn info(channel: Channel, redacted: bool, y: i32, m: u32, d: u32) -> Option<KeyInfo> {
    Some(KeyInfo {
        channel,
        redacted,
        contact_id: ID.to_string(),
        date: NaiveDate::from_ymd_opt(y, m, d),
    })
}

#[test]
fn it_parses_raw_and_redacted_voice_and_chat_keys() {
    assert_eq!(
        parse_key(&format!(
            "Analysis/Voice/2026/09/02/{ID}_analysis_2026-09-02T00:17:10Z.json"
        )),
        info(Channel::Voice, false, 2026, 9, 2)
    );
    assert_eq!(
        parse_key(&format!(
            "Analysis/Voice/Redacted/2026/09/02/{ID}_analysis_redacted_2026-09-02T00:17:10Z.json"
        )),
        info(Channel::Voice, true, 2026, 9, 2)
    );
    assert_eq!(
        parse_key(&format!(
            "Analysis/Chat/2022/10/27/{ID}_analysis_2022-10-27T03:40:00Z.json"
        )),
        info(Channel::Chat, false, 2022, 10, 27)
    );
    assert_eq!(
        parse_key(&format!(
            "Analysis/Chat/Redacted/2022/10/27/{ID}_analysis_redacted_2022-10-27T03:40:00.123Z.json"
        )),
        info(Channel::Chat, true, 2022, 10, 27)
    );
}

#[test]
fn it_accepts_any_prefix_before_analysis() {
    assert_eq!(
        parse_key(&format!(
            "connect/example-instance/Analysis/Voice/2024/01/14/{ID}_analysis_2024-01-14T07:05:09Z.json"
        )),
        info(Channel::Voice, false, 2024, 1, 14)
    );
    assert_eq!(
        parse_key(&format!(
            "a/b/c/connect/x/Analysis/Chat/Redacted/2024/01/14/{ID}_analysis_redacted_2024-01-14T07:05:09Z.json"
        )),
        info(Channel::Chat, true, 2024, 1, 14)
    );
}

#[test]
fn it_accepts_underscores_in_the_timestamp() {
    assert_eq!(
        parse_key(&format!(
            "connect/x/Analysis/Voice/2024/01/14/{ID}_analysis_2024-01-14T07_05_09Z.json"
        )),
        info(Channel::Voice, false, 2024, 1, 14)
    );
}

#[test]
fn it_ignores_keys_that_are_not_analysis_files() {
    for key in [
        // Recordings and redacted audio.
        format!("connect/x/CallRecordings/2026/09/02/{ID}_20260902T00:17_UTC.wav"),
        format!("connect/x/Analysis/Voice/Redacted/2026/09/02/{ID}_call_recording_redacted_2026-09-02T00:17:10Z.wav"),
        format!("connect/x/Analysis/Voice/2026/09/02/{ID}_analysis_2026-09-02T00:17:10Z.wav"),
        // Chat transcripts (not analysis) and real-time output.
        format!("connect/x/ChatTranscripts/2026/09/02/{ID}_20260902T00:20_UTC.json"),
        // Our own outputs, even when they echo an analysis key.
        "calltype/transcripts/date=2026-09-02/transcripts.csv".to_string(),
        format!("calltype/quarantine/connect/x/Analysis/Voice/2026/09/02/{ID}_analysis_2026-09-02T00:17:10Z.json"),
        "calltype/labeled/date=2026-09-02/part-0-100.csv".to_string(),
        // Broken grammar.
        format!("Analysis/Voice/2026/09/{ID}_analysis_2026-09-02T00:17:10Z.json"),
        format!("Analysis/Voice/2026/09/02/extra/{ID}_analysis_2026-09-02T00:17:10Z.json"),
        format!("Analysis/Voice/2026/13/02/{ID}_analysis_2026-09-02T00:17:10Z.json"),
        format!("Analysis/Voice/26/09/02/{ID}_analysis_2026-09-02T00:17:10Z.json"),
        format!("Analysis/Email/2026/09/02/{ID}_analysis_2026-09-02T00:17:10Z.json"),
        format!("Analysis/Voice/2026/09/02/{ID}_analysis_.json"),
        "Analysis/Voice/2026/09/02/_analysis_2026-09-02T00:17:10Z.json".to_string(),
        "Analysis/Voice/2026/09/02/".to_string(),
        format!("{ID}_analysis_2026-09-02T00:17:10Z.json"),
        String::new(),
    ] {
        assert_eq!(parse_key(&key), None, "{key}");
    }
}

#[test]
fn it_decodes_notification_keys() {
    assert_eq!(
        decode_notification_key(
            "Analysis/Voice/2026/09/02/x_analysis_2026-09-02T00%3A17%3A10Z.json"
        ),
        "Analysis/Voice/2026/09/02/x_analysis_2026-09-02T00:17:10Z.json"
    );
    assert_eq!(
        decode_notification_key("my+prefix/a%2Bb%20c"),
        "my prefix/a+b c"
    );
    assert_eq!(decode_notification_key("plain/key.json"), "plain/key.json");
    // Bad escapes are kept as they are; invalid UTF-8 becomes U+FFFD.
    assert_eq!(decode_notification_key("100%"), "100%");
    assert_eq!(decode_notification_key("a%ffb"), "a\u{fffd}b");
}

#[test]
fn both_event_shapes_give_the_same_key_info() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let events = shared.join("fixtures/events");
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(events.join(name)).unwrap()).unwrap()
    };
    let s3 = read("ciopulse_s3-notification_voice-redacted_urlencoded-key.json");
    let eb = read("ciopulse_eventbridge_voice-redacted.json");
    let s3_key = s3["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
    let eb_key = eb["detail"]["object"]["key"].as_str().unwrap();
    assert!(s3_key.contains("%3A"));
    let decoded = decode_notification_key(s3_key);
    assert_eq!(decoded, eb_key);
    let from_s3 = parse_key(&decoded).unwrap();
    assert_eq!(Some(from_s3.clone()), parse_key(eb_key));
    assert_eq!(from_s3, info(Channel::Voice, true, 2026, 9, 2).unwrap());
    // Undecoded, the notification key still parses (`%3A` sits in the timestamp only).
    assert_eq!(parse_key(s3_key), Some(from_s3));
}

#[test]
fn file_names_alone_give_contact_id_and_redaction() {
    let n = parse_file_name(&format!("dev/{ID}_analysis_2024-01-02T07_13_38Z.json")).unwrap();
    assert_eq!(n.contact_id, ID);
    assert!(!n.redacted);
    assert_eq!(n.timestamp_date, NaiveDate::from_ymd_opt(2024, 1, 2));
    let n = parse_file_name(&format!("{ID}_analysis_redacted_2024-01-02T07:13:38Z.json")).unwrap();
    assert!(n.redacted);
    assert_eq!(parse_file_name("notes.json"), None);
    assert_eq!(
        parse_file_name(&format!("{ID}_analysis_2024-01-02T07:13:38Z.json.gz")),
        None
    );
}

#[test]
fn channel_and_participants_names() {
    use contact_lens::Participants;
    assert_eq!(Channel::Voice.to_string(), "VOICE");
    assert_eq!(Channel::Chat.as_str(), "CHAT");
    assert_eq!("all".parse::<Participants>(), Ok(Participants::All));
    assert_eq!(
        "Customer".parse::<Participants>(),
        Ok(Participants::Customer)
    );
    assert_eq!(" AGENT ".parse::<Participants>(), Ok(Participants::Agent));
    assert!("both".parse::<Participants>().is_err());
    assert_eq!(Participants::Customer.to_string(), "customer");
}
