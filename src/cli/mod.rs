//! The `assay` client: subcommands that talk to a running server through the generated gRPC
//! clients, read resource and test files, show live progress and write reports for CI.
//!
//! Exit codes: 0 success; 1 an input error (a bad or unreadable file, an unknown name, a
//! `--report` path that cannot be written: all found before any endpoint is called), the server
//! refused or could not be reached (the gRPC code and message are printed), or does not serve
//! (`health`), or a test regressed with `--fail-on-regression`; 2 bad arguments (a flag or value the command line does not allow), found before
//! any call; 3 the run finished but failed its gate (`--fail-under`) on its tests' verdicts; 4 the
//! run could not be judged (it ended FAILED, CANCELLED or BUDGET_EXCEEDED, or every result is an error: an outage,
//! not a regression); 130 Ctrl-C stopped following a run (which goes on on the server).

pub mod args;
mod catalogue;
mod client;
mod compare;
mod health;
mod import;
mod json;
mod output;
mod progress;
mod report;
mod run;
mod suite;

use std::process::ExitCode;

pub use args::{ClientCommand, Global};
pub use client::{Clients, SendApiKey, Transport};

/// Why a client command did not succeed; each kind has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments, found before any call was made.
    #[error("{0}")]
    Usage(String),
    /// A bad or unreadable input file, or an output path that cannot be written, found before
    /// any endpoint is called.
    #[error("{0}")]
    Input(String),
    /// The server answered with an error.
    #[error("server error: {code:?}: {message}", code = .0.code(), message = .0.message())]
    Status(#[from] tonic::Status),
    /// The server could not be reached.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// Writing output or a report failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The run ended but did not meet the gate.
    #[error("{0}")]
    Gate(String),
    /// Some test regressed and `--fail-on-regression` was given.
    #[error("{0}")]
    Regression(String),
    /// The run ended without verdicts to judge it by.
    #[error("{0}")]
    Unjudged(String),
    /// The server answers but does not serve (its database is away); the status it gave.
    #[error("the server is {0}")]
    NotServing(String),
    /// Ctrl-C stopped following a run (its id, empty before it started); the run goes on.
    #[error(
        "stopped following run {0}; it goes on on the server: `assay watch {0}` follows it again, \
         `assay cancel {0}` stops it"
    )]
    Interrupted(String),
    /// Ctrl-C stopped a run of `eval` on its embedded server (its id): the run was cancelled,
    /// since no server goes on with it once the command ends.
    #[error("stopped: run {0} was cancelled (it ran on eval's own embedded server)")]
    Cancelled(String),
}

impl CliError {
    /// The process exit code for this error (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_)
            | CliError::Status(_)
            | CliError::Connect(..)
            | CliError::Io(_)
            | CliError::NotServing(_)
            | CliError::Regression(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Gate(_) => 3,
            CliError::Unjudged(_) => 4,
            // As a shell reports a command that SIGINT stopped.
            CliError::Interrupted(_) | CliError::Cancelled(_) => 130,
        }
    }

    /// A usage error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// An input error.
    pub(crate) fn input(message: impl Into<String>) -> Self {
        CliError::Input(message.into())
    }
}

/// Runs one client command against the server named in `global`; prints the error, if any,
/// and returns the exit code.
pub async fn run(global: Global, command: ClientCommand) -> ExitCode {
    match dispatch(&global, command).await {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): nobody is left to tell.
        Err(CliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn dispatch(global: &Global, command: ClientCommand) -> Result<(), CliError> {
    use args::{RunsCommand, TestSetCommand};
    use catalogue::Kind;
    let out = output::Output::new(global.json);
    match command {
        ClientCommand::Create { file } => catalogue::create_all(global, &out, &file).await,
        ClientCommand::Apply { file } => suite::apply(global, &out, &file).await,
        ClientCommand::Eval(args) => suite::eval(global, &out, args).await,
        ClientCommand::Metric(c) => catalogue::run(global, &out, Kind::Metric, c).await,
        ClientCommand::Behavior(c) => catalogue::run(global, &out, Kind::Behavior, c).await,
        ClientCommand::Endpoint(c) => catalogue::run(global, &out, Kind::Endpoint, c).await,
        ClientCommand::TestSet(TestSetCommand::Catalogue(c)) => {
            catalogue::run(global, &out, Kind::TestSet, c).await
        }
        ClientCommand::TestSet(TestSetCommand::Import(a)) => import::run(global, &out, a).await,
        ClientCommand::TestSet(TestSetCommand::Metrics(c)) => {
            run::test_set_metrics(global, &out, c).await
        }
        ClientCommand::Execute(a) => run::execute(global, &out, a).await,
        ClientCommand::Rescore(a) => run::rescore(global, &out, a).await,
        ClientCommand::LastRun(a) => run::last_run(global, &out, a).await,
        ClientCommand::Watch(a) => run::watch(global, &out, a).await,
        ClientCommand::RetryErrors(a) => run::retry_errors(global, &out, a).await,
        ClientCommand::Cancel(a) => run::cancel(global, &out, a).await,
        ClientCommand::Runs(RunsCommand::List {
            test_set,
            endpoint,
            labels,
        }) => run::list_runs(global, &out, test_set, endpoint, labels).await,
        ClientCommand::Compare(a) => compare::compare(global, &out, a).await,
        ClientCommand::Report(a) => run::report(global, a).await,
        ClientCommand::Health => health::run(global).await,
    }
}
