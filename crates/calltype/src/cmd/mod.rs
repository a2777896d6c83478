pub mod data;
pub mod eval;
pub mod ingest;
pub mod package;
pub mod parse;
pub mod predict;
pub mod serve;
pub mod train;
