//! The real `aws-sdk-sagemakerruntime` client, pointed at an in-process server with
//! `endpoint_url`, gets the model's labels: our server is a drop-in local SageMaker runtime.

mod common;

use aws_sdk_sagemakerruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sagemakerruntime::primitives::Blob;
use model::Classifier;
use serde_json::{json, Value};
use serve::Limits;

#[tokio::test]
async fn the_sdk_client_invokes_the_endpoint_and_gets_labels() {
    let Some(dir) = common::tiny_model() else {
        return;
    };
    let direct = Classifier::load(&dir).unwrap();
    let addr = common::start(dir, Limits::default()).await;

    let sdk_config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(format!("http://{addr}"))
        .load()
        .await;
    let client = aws_sdk_sagemakerruntime::Client::new(&sdk_config);

    let texts = ["please cancel my plan", "my card is blocked"];
    let out = client
        .invoke_endpoint()
        .endpoint_name("x")
        .content_type("application/json")
        .accept("application/json")
        .body(Blob::new(json!({ "inputs": texts }).to_string()))
        .send()
        .await
        .expect("invoke_endpoint");
    assert_eq!(out.content_type(), Some("application/json"));
    let answers: Value = serde_json::from_slice(out.body().unwrap().as_ref()).unwrap();
    let labels: Vec<&str> = answers
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["label"].as_str().unwrap())
        .collect();
    let want = direct.predict(&texts).unwrap();
    assert_eq!(
        labels,
        want.iter().map(|p| p.label.as_str()).collect::<Vec<_>>()
    );

    // A malformed body comes back as the SDK's model error, with our reason in it.
    let err = client
        .invoke_endpoint()
        .endpoint_name("x")
        .content_type("application/json")
        .body(Blob::new(r#"{"inputs": 1}"#))
        .send()
        .await
        .expect_err("a 400");
    let raw = err.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 400);
}
