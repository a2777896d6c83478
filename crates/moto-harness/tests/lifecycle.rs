//! The harness starts a server that answers S3 calls and stops it on drop.

use std::net::TcpStream;

use moto_harness::MotoServer;
use store::{Condition, ObjectStore};

#[tokio::test]
async fn it_serves_s3_and_stops_on_drop() {
    let moto = MotoServer::start();
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    let port = moto.port();

    let store = moto.bucket("harness").await;
    let etag = store
        .put("k", b"v".to_vec(), Condition::IfNoneMatch)
        .await
        .unwrap();
    assert_eq!(store.get("k").await.unwrap().unwrap().etag, etag);
    // Creating an existing bucket again is fine.
    moto.bucket("harness").await;

    drop(moto);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "moto still listens after drop"
    );
}
