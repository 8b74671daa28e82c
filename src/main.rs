//! The `assay` command.

use std::io::IsTerminal;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    version,
    about = "Assay: run test suites against LLM applications and score every answer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(assay::config::ServeConfig),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // ASSAY_LOG wins over RUST_LOG; both take the usual `info,assay=debug` syntax.
    let filter = std::env::var("ASSAY_LOG")
        .ok()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: logs piped to a file or `docker logs` stay plain.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => assay::server::run(config).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "assay stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
