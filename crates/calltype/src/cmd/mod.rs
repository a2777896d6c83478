pub mod ingest;
pub mod parse;
