//! The `calltype` command line: parse, ingest, classify, train, eval, predict, serve, package.
//! It wires the same libraries the Lambdas use; it holds no pipeline logic of its own.
fn main() {}
