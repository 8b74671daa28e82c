//! The `assay` command: `serve` runs the server; every other subcommand is a client of one
//! (see [`assay::cli`]).

use assay::telemetry::logging;
use clap::{Args, CommandFactory, Parser, Subcommand};

/// jemalloc rather than glibc's malloc: a run allocates and frees many small buffers per test
/// across threads, where glibc's malloc took about a quarter of the server's CPU (see
/// BENCHMARKS.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start: a background thread gives memory freed (e.g. after a
/// large import) back to the system within a second, so the server's size follows what it holds.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// The `const char *` jemalloc reads.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: it points to a string literal, never written.
unsafe impl Sync for MallocConf {}

#[derive(Parser)]
#[command(
    version,
    about = "Assay: run test suites against LLM applications and score every answer",
    after_help = "Exit codes of the client commands: 0 success; 1 an input error (a bad file, an \
                  unknown name, a --report path that cannot be written: found before any \
                  endpoint is called), the server refused (its gRPC code and message are \
                  printed), could not be reached or does not serve (health); 2 bad arguments, \
                  found before any call; 3 the run finished under its gate (--fail-under); 4 \
                  the run could not be judged (FAILED, CANCELLED, or every result an error); \
                  130 Ctrl-C stopped following a run."
)]
struct Cli {
    #[command(flatten)]
    global: assay::cli::Global,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(assay::config::ServeConfig),
    /// Client commands, sent to the server named by `--server`.
    #[command(flatten)]
    Client(assay::cli::ClientCommand),
}

/// `serve`'s own command line, for its help: the client's global flags (`--server`, `--json`),
/// which clap shows in every subcommand's help, mean nothing to the server; the global
/// `--api-key` does (the key the server requires), so it is listed.
fn serve_help() -> clap::Command {
    let cli = Cli::command();
    let serve = cli
        .find_subcommand("serve")
        .expect("serve is a subcommand")
        .clone();
    let api_key = cli
        .get_arguments()
        .find(|a| a.get_id() == "api_key")
        .expect("--api-key is a global flag")
        .clone()
        .global(false)
        .help("API key callers must send (authorization: Bearer KEY, or x-api-key: KEY); it grants every RPC. Without one, the server listens on loopback addresses only (unless --insecure-no-auth)");
    assay::config::ServeConfig::augment_args(
        clap::Command::new("serve")
            .bin_name("assay serve")
            .arg(api_key),
    )
    .about(serve.get_about().cloned().unwrap_or_default())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "serve") && args.iter().any(|a| a == "--help" || a == "-h")
    {
        let _ = serve_help().print_long_help();
        return std::process::ExitCode::SUCCESS;
    }
    // Usage errors exit with code 2 here, before any call is made.
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Serve(mut config) => {
            // `--api-key` is global: the key the clients send is the key the server requires.
            config.api_key = cli.global.api_key;
            let tracing = match logging::init(config.log_format, config.otlp().as_ref(), "info") {
                Ok(tracing) => tracing,
                Err(e) => {
                    eprintln!("assay: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            let code = serve(config).await;
            tracing.shutdown().await;
            // Exits here rather than by returning, which would drop the runtime and wait for
            // every thread: a template render cannot be interrupted, and one still running
            // after the grace period must not hold the process.
            std::process::exit(code)
        }
        Command::Client(command) => {
            // `eval` runs a server inside the process: its progress is the output, so the
            // server's own lines show only from warnings up, unless asked for. Client commands
            // log as text; their output is on stdout.
            let quiet = matches!(command, assay::cli::ClientCommand::Eval(_));
            let level = if quiet { "warn" } else { "info" };
            let _ = logging::init(logging::LogFormat::Text, None, level);
            assay::cli::run(cli.global, command).await
        }
    }
}

/// Runs the server until it stops; the exit code says whether it stopped cleanly.
async fn serve(config: assay::config::ServeConfig) -> i32 {
    match assay::server::run(config).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "assay stopped");
            1
        }
    }
}
