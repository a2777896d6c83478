//! The container contract over real HTTP: an in-process server on 127.0.0.1:0 with the tiny
//! test model, spoken to with raw HTTP/1.1.

mod common;

use std::future::IntoFuture;
use std::net::SocketAddr;

use common::{get, post_json, request, start, tiny_model};
use model::Classifier;
use serde_json::{json, Value};
use serve::{Limits, ServerState};

const TEXTS: [&str; 4] = [
    "I want to cancel my subscription please",
    "my card was declined at the store",
    "there is a charge on my bill I do not recognise",
    "the router keeps dropping the connection",
];

async fn ready() -> Option<(SocketAddr, Classifier)> {
    let dir = tiny_model()?;
    let direct = Classifier::load(&dir).unwrap();
    Some((start(dir, Limits::default()).await, direct))
}

fn close(a: f64, b: f32) -> bool {
    (a as f32 - b).abs() < 1e-4
}

/// `[{"label","score"}, ...]` as pairs.
fn pairs(v: &Value) -> Vec<(String, f64)> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list: {v}"))
        .iter()
        .map(|o| {
            (
                o["label"].as_str().unwrap().to_string(),
                o["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn it_pings_503_while_loading_and_200_once_ready() {
    let Some(dir) = tiny_model() else { return };
    let state = ServerState::loading(Limits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, serve::router(state.clone())).into_future());

    let ping = get(addr, "/ping").await;
    assert_eq!(ping.status, 503);
    assert!(ping.error().contains("loading"));
    let early = post_json(addr, "/invocations", r#"{"inputs": "hello"}"#).await;
    assert_eq!(early.status, 503);

    assert!(state.set_model(Classifier::load(&dir).unwrap()));
    assert!(state.is_ready());
    assert_eq!(get(addr, "/ping").await.status, 200);
    assert_eq!(
        post_json(addr, "/invocations", r#"{"inputs": "hello"}"#)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn it_answers_the_hugging_face_shapes_with_the_models_labels() {
    let Some((addr, direct)) = ready().await else {
        return;
    };
    let want = direct.predict(&TEXTS).unwrap();
    let labels = direct.labels();

    // A list of texts: one {"label","score"} per text, as Classifier::predict says.
    let reply = post_json(
        addr,
        "/invocations",
        &json!({ "inputs": TEXTS }).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let got = pairs(&reply.json());
    assert_eq!(got.len(), TEXTS.len());
    for ((label, score), p) in got.iter().zip(&want) {
        assert_eq!(label, &p.label);
        assert!(close(*score, p.score), "{score} vs {}", p.score);
    }

    // One string: a list holding its one answer.
    let one = post_json(
        addr,
        "/invocations",
        &json!({ "inputs": TEXTS[1] }).to_string(),
    )
    .await;
    let got = pairs(&one.json());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, want[1].label);

    // return_all_scores: every label, in label order, per text.
    let all = post_json(
        addr,
        "/invocations",
        &json!({ "inputs": TEXTS, "parameters": { "return_all_scores": true } }).to_string(),
    )
    .await
    .json();
    for (per_text, p) in all.as_array().unwrap().iter().zip(&want) {
        let got = pairs(per_text);
        assert_eq!(
            got.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
            labels
        );
        for ((_, s), w) in got.iter().zip(&p.scores) {
            assert!(close(*s, *w));
        }
    }

    // top_k: null → all labels by score, best first; a single string is not wrapped.
    let sorted = post_json(
        addr,
        "/invocations",
        &json!({ "inputs": TEXTS[0], "parameters": { "top_k": null } }).to_string(),
    )
    .await
    .json();
    let got = pairs(&sorted);
    assert_eq!(got.len(), labels.len());
    assert_eq!(got[0].0, want[0].label);
    assert!(got.windows(2).all(|w| w[0].1 >= w[1].1));

    // top_k: 2 over a list → a list of two-element lists.
    let top2 = post_json(
        addr,
        "/invocations",
        &json!({ "inputs": TEXTS, "parameters": { "top_k": 2 } }).to_string(),
    )
    .await
    .json();
    let top2 = top2.as_array().unwrap();
    assert_eq!(top2.len(), TEXTS.len());
    for (per_text, p) in top2.iter().zip(&want) {
        let got = pairs(per_text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, p.label);
    }
}

#[tokio::test]
async fn it_answers_json_lines_in_order() {
    let Some((addr, direct)) = ready().await else {
        return;
    };
    let want = direct.predict(&TEXTS[..3]).unwrap();
    let body: String = TEXTS[..3]
        .iter()
        .map(|t| format!("{}\n", json!({ "inputs": t })))
        .collect();
    for content_type in ["application/jsonlines", "application/x-jsonlines"] {
        let reply = request(
            addr,
            "POST",
            "/invocations",
            &[("Content-Type", content_type), ("Accept", content_type)],
            body.as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/jsonlines"));
        let text = String::from_utf8(reply.body).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        for (line, p) in lines.iter().zip(&want) {
            let got = pairs(&serde_json::from_str(line).unwrap());
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, p.label);
            assert!(close(got[0].1, p.score));
        }
    }

    // Accept: application/json turns the lines into one list, still in order.
    let reply = request(
        addr,
        "POST",
        "/invocations",
        &[
            ("Content-Type", "application/jsonlines"),
            ("Accept", "application/json"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let answers = reply.json();
    let labels: Vec<&str> = answers
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a[0]["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        want.iter().map(|p| p.label.as_str()).collect::<Vec<_>>()
    );

    // A JSON request may ask for JSON Lines back.
    let reply = request(
        addr,
        "POST",
        "/invocations",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/jsonlines"),
        ],
        json!({ "inputs": TEXTS[..3] }).to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.header("content-type"), Some("application/jsonlines"));
    assert_eq!(String::from_utf8(reply.body).unwrap().lines().count(), 1);
}

#[tokio::test]
async fn it_answers_the_runtime_api_path_too() {
    let Some((addr, direct)) = ready().await else {
        return;
    };
    let reply = post_json(
        addr,
        "/endpoints/x/invocations",
        &json!({ "inputs": [TEXTS[2]] }).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        pairs(&reply.json())[0].0,
        direct.predict(&[TEXTS[2]]).unwrap()[0].label
    );
    let params = get(addr, "/execution-parameters").await.json();
    assert_eq!(params["BatchStrategy"], "MULTI_RECORD");
    assert_eq!(params["MaxPayloadInMB"], 6);
    assert_eq!(get(addr, "/nowhere").await.status, 404);
}

#[tokio::test]
async fn it_answers_an_empty_list_with_an_empty_list() {
    let Some((addr, _)) = ready().await else {
        return;
    };
    let reply = post_json(addr, "/invocations", r#"{"inputs": []}"#).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!([]));
}

#[tokio::test]
async fn it_refuses_malformed_input_with_400_and_keeps_serving() {
    let Some((addr, _)) = ready().await else {
        return;
    };
    for body in [
        "",
        "{",
        "not json at all",
        "null",
        r#"["secret text"]"#,
        r#"{"text": "secret text"}"#,
        r#"{"inputs": 42}"#,
        r#"{"inputs": null}"#,
        r#"{"inputs": ["secret text", 42]}"#,
        r#"{"inputs": [["nested"]]}"#,
        r#"{"inputs": "secret text", "parameters": []}"#,
        r#"{"inputs": "secret text", "parameters": {"top_k": "two"}}"#,
        r#"{"inputs": "secret text", "parameters": {"top_k": -1}}"#,
        r#"{"inputs": "secret text", "parameters": {"return_all_scores": "yes"}}"#,
        "\u{0}\u{1}\u{2}",
    ] {
        let reply = post_json(addr, "/invocations", body).await;
        assert_eq!(reply.status, 400, "{body:?}");
        let reason = reply.error();
        assert!(!reason.is_empty());
        assert!(!reason.contains("secret"), "{reason}");
    }
    let deep = "[".repeat(100_000);
    assert_eq!(post_json(addr, "/invocations", &deep).await.status, 400);
    let not_utf8 = request(
        addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json")],
        &[0xff, 0xfe, 0x00],
    )
    .await;
    assert_eq!(not_utf8.status, 400);
    let bad_line = request(
        addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/jsonlines")],
        b"{\"inputs\": \"a\"}\n{\"inputs\": 1}\n",
    )
    .await;
    assert_eq!(bad_line.status, 400);
    assert!(bad_line.error().starts_with("line 2:"));

    let csv = request(
        addr,
        "POST",
        "/invocations",
        &[("Content-Type", "text/csv")],
        b"a,b",
    )
    .await;
    assert_eq!(csv.status, 415);
    assert!(!csv.error().is_empty());
    let accept = request(
        addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json"), ("Accept", "text/csv")],
        br#"{"inputs": "a"}"#,
    )
    .await;
    assert_eq!(accept.status, 406);

    assert_eq!(get(addr, "/ping").await.status, 200);
    assert_eq!(
        post_json(addr, "/invocations", r#"{"inputs": "still here"}"#)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn it_labels_a_ten_thousand_word_text() {
    let Some((addr, direct)) = ready().await else {
        return;
    };
    let words = ["billing", "card", "cancel", "router", "please", "account"];
    let long: Vec<&str> = (0..10_000).map(|i| words[i % words.len()]).collect();
    let long = long.join(" ");
    let reply = post_json(
        addr,
        "/invocations",
        &json!({ "inputs": [long, "short"] }).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let got = pairs(&reply.json());
    assert_eq!(got.len(), 2);
    assert!(direct.labels().contains(&got[0].0));
}

#[tokio::test]
async fn it_refuses_a_body_over_the_limit_with_413() {
    let Some(dir) = tiny_model() else { return };
    let small = start(
        dir.clone(),
        Limits {
            max_body_bytes: 1024,
        },
    )
    .await;
    let big = json!({ "inputs": "word ".repeat(400) }).to_string();
    let reply = post_json(small, "/invocations", &big).await;
    assert_eq!(reply.status, 413);
    assert!(reply.error().contains("1024"));
    assert_eq!(
        post_json(small, "/invocations", r#"{"inputs": "fits"}"#)
            .await
            .status,
        200
    );

    // The default is SageMaker's 6 MB.
    let default = start(dir, Limits::default()).await;
    let huge = json!({ "inputs": "x".repeat(serve::DEFAULT_MAX_BODY_BYTES) }).to_string();
    assert_eq!(post_json(default, "/invocations", &huge).await.status, 413);
    assert_eq!(get(default, "/ping").await.status, 200);
}

#[tokio::test]
async fn it_answers_concurrent_requests_each_with_its_own_labels() {
    let Some((addr, direct)) = ready().await else {
        return;
    };
    let want = direct.predict(&TEXTS).unwrap();
    let calls = (0..16).map(|i| {
        let text = TEXTS[i % TEXTS.len()];
        tokio::spawn(async move {
            let body = json!({ "inputs": [text, text] }).to_string();
            (i, post_json(addr, "/invocations", &body).await)
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let (i, reply) = call.await.unwrap();
        assert_eq!(reply.status, 200);
        let got = pairs(&reply.json());
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(l, _)| l == &want[i % TEXTS.len()].label));
    }
}
