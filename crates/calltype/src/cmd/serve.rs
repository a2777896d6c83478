//! `calltype serve [--model DIR] [--port 8080] [--host 0.0.0.0]`: the SageMaker inference
//! container (`docker run IMAGE serve`), or a local endpoint for the SDK to point at.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Result;
use serve::Limits;

#[derive(clap::Args)]
pub struct Args {
    /// The model directory (Hugging Face layout), where SageMaker unpacks model.tar.gz.
    #[arg(long, default_value = "/opt/ml/model")]
    model: PathBuf,
    /// The port; SageMaker sets SAGEMAKER_BIND_TO_PORT for multi-container endpoints.
    #[arg(long, env = "SAGEMAKER_BIND_TO_PORT", default_value_t = 8080)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// Largest request body in MiB; batch transform sets SAGEMAKER_MAX_PAYLOAD_IN_MB.
    #[arg(long, env = "SAGEMAKER_MAX_PAYLOAD_IN_MB", default_value_t = 6)]
    max_payload_mb: usize,
}

pub fn run(args: Args) -> Result<()> {
    let addr = SocketAddr::new(args.host, args.port);
    let limits = Limits {
        max_body_bytes: args.max_payload_mb.saturating_mul(1024 * 1024),
    };
    eprintln!(
        "calltype serve: listening on {addr}, loading the model from {} (GET /ping says 200 once ready)",
        args.model.display()
    );
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(serve::serve(args.model, addr, limits))?;
    Ok(())
}
