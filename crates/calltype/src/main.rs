//! The `calltype` command line: parse, ingest, classify, train, eval, predict, serve, package,
//! suggest.
//!
//! It wires the same libraries the Lambdas use and holds no pipeline logic of its own; this is
//! the only crate (with the Lambdas' `main.rs`) that uses `anyhow`.

mod cmd;
mod hub;
mod plot;
mod suggest;
mod target;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "calltype",
    version,
    about = "Label Amazon Connect calls with a call type"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print what calltype extracts from one Contact Lens analysis file, as JSON.
    Parse(cmd::parse::Args),
    /// Ingest the analysis files in a store that are not ingested yet, as the Lambda would.
    Ingest(cmd::ingest::Args),
    /// Label the master-CSV rows not labeled yet, as the classify Lambda would.
    Classify(cmd::classify::Args),
    /// Fine-tune a backbone into a call-type classifier (Hugging Face layout).
    Train(cmd::train::Args),
    /// Measure a trained model on labelled data: report.json, confusion matrix, curves.
    Eval(cmd::eval::Args),
    /// Label texts, a CSV or a directory of analysis files with a trained model (JSON lines).
    Predict(cmd::predict::Args),
    /// Pack a trained model into a SageMaker model.tar.gz (files at the archive root).
    Package(cmd::package::Args),
    /// Serve a model over HTTP as a SageMaker inference container (GET /ping, POST /invocations).
    Serve(cmd::serve::Args),
    /// The calls to label next, as a CSV to fill in for `train --labels`: the ones a model is
    /// least sure of, or without a model the ones that cover the kinds of calls there are.
    Suggest(cmd::suggest::Args),
}

fn main() {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Parse(a) => cmd::parse::run(a),
        Command::Ingest(a) => cmd::ingest::run(a),
        Command::Classify(a) => cmd::classify::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Predict(a) => cmd::predict::run(a),
        Command::Package(a) => cmd::package::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Suggest(a) => cmd::suggest::run(a),
    };
    if let Err(e) = result {
        eprintln!("calltype: {e:#}");
        std::process::exit(1);
    }
}

/// Logs go to stderr, off unless `RUST_LOG` asks for them, so progress bars stay readable.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
