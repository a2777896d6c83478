//! Bad input gives a typed error, never a panic, and errors carry no file content.

mod common;

use contact_lens::{parse, ParseError};

fn what(e: ParseError) -> String {
    match e {
        ParseError::NotPostCallAnalysis { what } => what,
        other => panic!("expected NotPostCallAnalysis, got {other:?}"),
    }
}

#[test]
fn it_rejects_non_utf8_bytes() {
    let bytes = b"{\"Version\": \"1.1.0\", \"Channel\": \"\xff\xfe\"}";
    let bad_at = bytes.iter().position(|&b| b == 0xff).unwrap();
    assert_eq!(
        parse(bytes, None).unwrap_err(),
        ParseError::NotUtf8 {
            valid_up_to: bad_at
        }
    );
    assert_eq!(
        parse(&[0xff, 0xd8, 0xff, 0xe0], None).unwrap_err(),
        ParseError::NotUtf8 { valid_up_to: 0 }
    );
}

#[test]
fn it_reports_truncated_json_for_a_fixture_cut_in_half() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = common::fixture(&shared, "voice_raw_v1.1.0_doc-2022-04-15.json");
    let half = &bytes[..bytes.len() / 2];
    match parse(half, None).unwrap_err() {
        ParseError::Truncated { line, .. } => assert!(line > 100, "line {line}"),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn it_never_panics_on_any_prefix_of_a_fixture() {
    let file = common::local_fixture("chat_unordered_with_system.json");
    let bytes = file.trim_ascii_end();
    for n in 0..bytes.len() {
        let err = parse(&bytes[..n], None).expect_err("a strict prefix is never a whole document");
        assert!(
            matches!(
                err,
                ParseError::Truncated { .. }
                    | ParseError::Empty { .. }
                    | ParseError::NotUtf8 { .. }
            ),
            "prefix {n}: {err:?}"
        );
    }
}

#[test]
fn it_never_panics_on_corrupted_bytes() {
    let bytes = common::local_fixture("voice_future_version_unknown_fields.json");
    for (i, b) in [b'"', b'{', b'}', b'[', b',', b':', b'\\', 0u8, b'9', b'x']
        .iter()
        .cycle()
        .enumerate()
        .take(600)
    {
        let mut copy = bytes.clone();
        let at = (i * 7919) % copy.len();
        copy[at] = *b;
        let _ = parse(&copy, None);
    }
}

#[test]
fn it_rejects_empty_and_whitespace_only_input() {
    assert_eq!(parse(b"", None).unwrap_err(), ParseError::Empty { len: 0 });
    let huge = vec![b' '; 8 << 20];
    assert_eq!(
        parse(&huge, None).unwrap_err(),
        ParseError::Empty { len: 8 << 20 }
    );
    assert_eq!(
        parse(b"\r\n\t \n", None).unwrap_err(),
        ParseError::Empty { len: 5 }
    );
}

#[test]
fn it_rejects_a_huge_whitespace_only_json_string() {
    let mut s = String::with_capacity(4 << 20);
    s.push('"');
    s.push_str(&" \\n\\t\\r".repeat(1 << 20));
    s.push('"');
    assert_eq!(
        what(parse(s.as_bytes(), None).unwrap_err()),
        "a JSON string"
    );
}

#[test]
fn it_drops_whitespace_only_turns() {
    let content = " \r\n\t".repeat(1 << 18);
    let doc = format!(
        r#"{{"Version":"1.1.0","Channel":"VOICE","JobStatus":"COMPLETED",
            "CustomerMetadata":{{"ContactId":"abc"}},
            "Transcript":[{{"ParticipantId":"AGENT","Content":"{}","BeginOffsetMillis":0}}]}}"#,
        content
            .replace('\r', "\\r")
            .replace('\n', "\\n")
            .replace('\t', "\\t")
    );
    let c = parse(doc.as_bytes(), None).unwrap();
    assert!(c.turns.is_empty());
    assert_eq!(c.transcript(contact_lens::Participants::All), "");
}

#[test]
fn it_rejects_empty_object_and_array_and_scalars() {
    assert_eq!(
        what(parse(b"{}", None).unwrap_err()),
        "a JSON object without Version, Channel, JobStatus or Transcript"
    );
    assert_eq!(what(parse(b" [] ", None).unwrap_err()), "a JSON array");
    assert_eq!(
        what(parse(b"[{\"Version\":\"1.1.0\"}]", None).unwrap_err()),
        "a JSON array"
    );
    assert_eq!(what(parse(b"null", None).unwrap_err()), "JSON null");
    assert_eq!(what(parse(b"42", None).unwrap_err()), "a JSON number");
    assert_eq!(what(parse(b"true", None).unwrap_err()), "a JSON boolean");
}

#[test]
fn it_rejects_other_json_kinds_and_says_what_they_are() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let events = shared.join("fixtures/events");
    let s3 =
        std::fs::read(events.join("ciopulse_s3-notification_voice-redacted_urlencoded-key.json"))
            .unwrap();
    assert!(what(parse(&s3, None).unwrap_err()).contains("event notification"));
    let eb = std::fs::read(events.join("ciopulse_eventbridge_voice-redacted.json")).unwrap();
    assert!(what(parse(&eb, None).unwrap_err()).contains("EventBridge"));

    let transcribe = br#"{"jobName":"j","accountId":"1","results":{"transcripts":[{"transcript":"hi"}]},"status":"COMPLETED"}"#;
    assert!(what(parse(transcribe, None).unwrap_err()).contains("Transcribe"));
    let analytics = br#"{"JobName":"j","JobStatus":"COMPLETED","Channel":"VOICE","Transcript":[{"ParticipantRole":"AGENT","Content":"hi"}]}"#;
    assert!(what(parse(analytics, None).unwrap_err()).contains("Call Analytics"));
    let ctr = br#"{"ContactId":"c","InitiationMethod":"INBOUND","Channel":"VOICE"}"#;
    assert!(what(parse(ctr, None).unwrap_err()).contains("contact record"));
}

#[test]
fn it_rejects_a_document_without_a_version() {
    let doc = br#"{"Channel":"VOICE","JobStatus":"COMPLETED","Transcript":[],"CustomerMetadata":{"ContactId":"c"}}"#;
    assert_eq!(
        parse(doc, None).unwrap_err(),
        ParseError::UnsupportedVersion {
            version: String::new()
        }
    );
}

#[test]
fn it_reports_a_failed_job() {
    let doc = br#"{"Version":"1.1.0","Channel":"VOICE","JobStatus":"FAILED","CustomerMetadata":{"ContactId":"c"}}"#;
    assert_eq!(
        parse(doc, None).unwrap_err(),
        ParseError::JobNotCompleted {
            status: "FAILED".into()
        }
    );
}

#[test]
fn it_accepts_a_completed_job_with_an_empty_transcript() {
    let doc = br#"{"Version":"1.1.0","Channel":"VOICE","JobStatus":"COMPLETED","Transcript":[],"CustomerMetadata":{"ContactId":"c"}}"#;
    let c = parse(doc, None).unwrap();
    assert!(c.turns.is_empty());
    assert_eq!(c.duration_ms, None);
}

#[test]
fn it_reports_malformed_json_with_line_and_column() {
    let doc = b"{\n  \"Version\": \"1.1.0\",\n  \"Channel\" \"VOICE\"\n}";
    match parse(doc, None).unwrap_err() {
        ParseError::Malformed { line, column, msg } => {
            assert_eq!((line, column), (3, 13));
            assert!(msg.contains("expected `:`"), "{msg}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert!(matches!(
        parse(b"hello", None).unwrap_err(),
        ParseError::Malformed { line: 1, .. }
    ));
    assert!(matches!(
        parse(b"{} {}", None).unwrap_err(),
        ParseError::Malformed { .. }
    ));
}

#[test]
fn it_survives_deep_nesting() {
    let deep = 100_000;
    // Unclosed, in an unknown field: skipped without recursion until the input ends.
    let mut doc = String::from("{\"Version\":\"1.1.0\",\"X\":");
    doc.push_str(&"[".repeat(deep));
    assert!(matches!(
        parse(doc.as_bytes(), None).unwrap_err(),
        ParseError::Truncated { .. }
    ));
    // Closed: the unknown field is skipped, and the object has no transcript.
    doc.push_str(&"]".repeat(deep));
    doc.push('}');
    assert!(matches!(
        parse(doc.as_bytes(), None).unwrap_err(),
        ParseError::NotPostCallAnalysis { .. }
    ));
    // Nested where we read: serde_json's recursion limit gives an error, not a stack overflow.
    let mut doc = String::from("{\"Version\":\"1.1.0\",\"Transcript\":[{\"Content\":");
    doc.push_str(&"[".repeat(deep));
    doc.push_str(&"]".repeat(deep));
    doc.push_str("}]}");
    assert!(parse(doc.as_bytes(), None).is_err());
}

#[test]
fn errors_carry_no_file_content() {
    // A wrong type: serde would quote the value; the reason must not.
    let doc = br#"{"Version":"1.1.0","Channel":"VOICE","Transcript":"my card number is 4111"}"#;
    let err = parse(doc, None).unwrap_err();
    assert!(matches!(err, ParseError::InvalidField { .. }), "{err:?}");
    let reason = err.reason();
    assert!(!reason.contains("4111"), "{reason}");
    assert!(!reason.contains('\n'));
    assert_eq!(err.code(), "invalid_field");

    let doc = br#"{"Version":"1.1.0","Participants":"secret","Transcript":[]}"#;
    let reason = parse(doc, None).unwrap_err().reason();
    assert!(!reason.contains("secret"), "{reason}");
    assert!(reason.contains("line 1"), "{reason}");

    let versions = br#"{"Version":"my secret version string that is far too long to be a version","JobStatus":"COMPLETED","Transcript":[]}"#;
    let reason = parse(versions, None).unwrap_err().reason();
    assert!(
        reason.starts_with("unsupported Contact Lens version"),
        "{reason}"
    );
    assert!(!reason.contains("too long to be"), "{reason}");
}

#[test]
fn it_rejects_realtime_segments_even_with_post_call_fields() {
    let doc = br#"{"Version":"1.0.0","Channel":"VOICE","ContactId":"c","EventType":"COMPLETED","Transcript":[]}"#;
    assert_eq!(parse(doc, None).unwrap_err(), ParseError::RealtimeSegment);
}

#[test]
fn it_accepts_a_byte_order_mark() {
    let doc = "\u{feff}{\"Version\":\"1.1.0\",\"Channel\":\"VOICE\",\"JobStatus\":\"COMPLETED\",\"Transcript\":[],\"CustomerMetadata\":{\"ContactId\":\"c\"}}";
    assert_eq!(parse(doc.as_bytes(), None).unwrap().contact_id, "c");
}
