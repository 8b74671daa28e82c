//! The command line of the client subcommands (clap): what a user types, nothing more.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::auth::ApiKey;

/// Where the server is and how to print; shared by every client subcommand.
#[derive(Clone, Debug, Args)]
pub struct Global {
    /// URL of the Assay server [default: http://127.0.0.1:50051]; `HOST:PORT` means plain
    /// HTTP. `eval` without it runs a server inside the process.
    #[arg(long, global = true, env = "ASSAY_SERVER")]
    pub server: Option<String>,

    /// API key: the client commands send it with every call (`authorization: Bearer KEY`);
    /// `serve` requires it of every caller, and grants it every RPC.
    #[arg(long, global = true, env = "ASSAY_API_KEY", hide_env_values = true)]
    pub api_key: Option<ApiKey>,

    /// CA certificate (PEM) that an `https://` server's certificate must be signed by, instead
    /// of the system's root certificates.
    #[arg(long, global = true, env = "ASSAY_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate (PEM) for a server that requires mutual TLS. Needs `--client-key`.
    #[arg(long, global = true, env = "ASSAY_CLIENT_CERT", value_name = "PEM")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of `--client-cert`.
    #[arg(long, global = true, env = "ASSAY_CLIENT_KEY", value_name = "PEM")]
    pub client_key: Option<PathBuf>,

    /// Machine-readable output: resources and events as JSON (one object per line), the same
    /// JSON that grpcurl prints.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Where a client command goes when `--server` is not given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

impl Global {
    /// The server to talk to: `--server`, else [`DEFAULT_SERVER`].
    pub fn server_url(&self) -> &str {
        self.server.as_deref().unwrap_or(DEFAULT_SERVER)
    }
}

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create metrics, behaviours, endpoints and test sets from one YAML/JSON file with the
    /// lists `metrics`, `behaviors`, `endpoints` and `testSets` (created in that order).
    Create {
        /// The file (`-` reads standard input).
        #[arg(short, long)]
        file: PathBuf,
    },
    /// Make the server's catalogue match a suite file: the `create -f` sections (`metrics`,
    /// `behaviors`, `endpoints`, `testSets`), each test set with its `tests`. Creates what is
    /// missing, updates what changed, leaves the rest, all or nothing; prints which. Tests are
    /// matched by their `key`, else their prompt; a test set that lists tests ends with exactly
    /// those.
    Apply {
        /// The suite file, YAML or JSON (`-` reads standard input).
        #[arg(short, long)]
        file: PathBuf,
    },
    /// Apply a suite file and run one of its test sets against one of its endpoints, with live
    /// progress, a report and the gate's exit code, on a server inside this process on an
    /// embedded database (or on `--server`).
    Eval(EvalArgs),
    /// Metrics: what scores one answer.
    #[command(subcommand)]
    Metric(CatalogueCommand),
    /// Behaviours: named groups of metrics that score the tests of that behaviour.
    #[command(subcommand)]
    Behavior(CatalogueCommand),
    /// Endpoints: the applications under test.
    #[command(subcommand)]
    Endpoint(CatalogueCommand),
    /// Test sets, their tests and their metrics.
    #[command(subcommand)]
    TestSet(TestSetCommand),
    /// Run a test set against an endpoint with live progress; exits 3 when the gate fails.
    Execute(ExecuteArgs),
    /// Score the stored outputs of an earlier run again, without calling the endpoint.
    Rescore(RescoreArgs),
    /// The summary of the latest completed run of a test set and an endpoint.
    LastRun(LastRunArgs),
    /// Follow a run by id: its stored results, then the live ones, then the summary.
    Watch(WatchArgs),
    /// Run again only the tests whose result was an error in an ended run, as a new run that
    /// copies the other results; follows it like `execute`.
    RetryErrors(WatchArgs),
    /// Cancel a run by id; prints its summary.
    Cancel(RunArgs),
    /// Stored runs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Write the report of a stored run (JUnit XML, JSON or CSV).
    Report(ReportCommandArgs),
    /// Compare two ended runs test by test: regressions and fixes first, then the totals and
    /// the McNemar p-value. `compare HEAD` compares with the run before it (see `--base-label`).
    Compare(CompareArgs),
    /// Whether the server serves (grpc.health.v1): prints SERVING and exits 0, else exits 1;
    /// a container's health check.
    Health,
}

/// `runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The runs, newest first, of a test set and/or an endpoint when given (every page).
    List {
        /// Test set id or name.
        test_set: Option<String>,
        /// Endpoint id or name.
        endpoint: Option<String>,
        /// Only runs carrying this label, `key=value` (repeatable: all must).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
}

/// Create, list, get, delete: the same for every kind of catalogue resource.
#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Create from a YAML/JSON file (proto JSON, as grpcurl shows it) and/or from flags.
    Create(CreateArgs),
    /// List all of them (every page).
    List,
    /// Show one, by id or name.
    Get(RefArgs),
    /// Delete one, by id or name.
    Delete(RefArgs),
}

/// The test-set commands: the catalogue ones, import, and the test set's metrics.
#[derive(Debug, Subcommand)]
pub enum TestSetCommand {
    /// Create, list, get, delete.
    #[command(flatten)]
    Catalogue(CatalogueCommand),
    /// Import tests from a JSONL, CSV or YAML file, all or nothing, in one call.
    Import(ImportArgs),
    /// The test set's own metrics (the middle tier of the metric hierarchy).
    #[command(subcommand)]
    Metrics(TestSetMetricsCommand),
}

/// `test-set metrics list|add|remove`.
#[derive(Debug, Subcommand)]
pub enum TestSetMetricsCommand {
    /// List the test set's metrics.
    List {
        /// Test set id or name.
        test_set: String,
    },
    /// Add metrics (ids or names); adding one already there changes nothing.
    Add(TestSetMetricsArgs),
    /// Remove metrics (ids or names); removing one not there changes nothing.
    Remove(TestSetMetricsArgs),
}

/// A test set and metric references.
#[derive(Debug, Args)]
pub struct TestSetMetricsArgs {
    /// Test set id or name.
    pub test_set: String,
    /// Metric ids or names.
    #[arg(required = true)]
    pub metrics: Vec<String>,
}

/// A resource named by id or name.
#[derive(Debug, Args)]
pub struct RefArgs {
    /// Id or name.
    pub reference: String,
}

/// How to build a new resource.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// YAML or JSON file holding the resource, or a list of resources, in the proto JSON form
    /// (`-` reads standard input).
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Name (overrides the file's).
    #[arg(long)]
    pub name: Option<String>,
    /// Description (overrides the file's).
    #[arg(long)]
    pub description: Option<String>,
    /// Metric id or name (behaviours and test sets; repeatable).
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
    /// Any other field, as `path=value`: a dotted path in the proto JSON form and a JSON or
    /// plain-text value, e.g. `contains.values=["Paris"]` or `http.url=http://127.0.0.1:8000`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub fields: Vec<String>,
}

/// `test-set import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// File of tests: `.jsonl`, `.csv`, `.yaml`/`.yml` (or give `--format`).
    pub file: PathBuf,
    /// Test set to add the tests to (id or name).
    #[arg(long, short = 't')]
    pub test_set: String,
    /// File format, when the extension does not tell.
    #[arg(long, value_enum, ignore_case = true)]
    pub format: Option<ImportFormat>,
    /// Create the test set (named by `--test-set`) before importing.
    #[arg(long)]
    pub create: bool,
    /// With `--create`: metrics of the new test set (repeatable).
    #[arg(long = "metric", requires = "create")]
    pub metrics: Vec<String>,
    /// Replace the test set's tests by the file's (in one transaction: a failed import keeps
    /// them), instead of appending.
    #[arg(long, conflicts_with = "create")]
    pub replace: bool,
}

/// Formats of test files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// One JSON object per line.
    Jsonl,
    /// A header row, then one test per row.
    Csv,
    /// A list of tests, or `{tests: [...]}`.
    Yaml,
}

/// Execution mode, as users write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Tests run concurrently.
    Parallel,
    /// One test at a time, in the test set's order.
    Sequential,
}

/// A test set and an endpoint.
#[derive(Debug, Args)]
pub struct PairArgs {
    /// Test set id or name.
    pub test_set: String,
    /// Endpoint id or name.
    pub endpoint: String,
}

/// `last-run`: a test set, an endpoint, and labels the run must carry.
#[derive(Debug, Args)]
pub struct LastRunArgs {
    /// Test set and endpoint.
    #[command(flatten)]
    pub pair: PairArgs,
    /// Only a run that carries this label (`KEY=VALUE`, repeatable: all must hold), e.g.
    /// `--label branch=main`.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

/// A run id.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run id.
    pub run: String,
}

/// How `execute` and `rescore` dispatch tests.
#[derive(Debug, Args)]
pub struct DispatchArgs {
    /// `parallel` or `sequential` (any case).
    #[arg(long, value_enum, ignore_case = true, default_value = "parallel")]
    pub mode: Mode,
    /// Most tests in flight at once (`execute`: endpoint calls; `rescore`: outputs scored).
    #[arg(long)]
    pub max_concurrency: Option<u32>,
}

/// `execute`.
#[derive(Debug, Args)]
pub struct ExecuteArgs {
    /// Test set and endpoint.
    #[command(flatten)]
    pub pair: PairArgs,
    /// Mode and concurrency.
    #[command(flatten)]
    pub dispatch: DispatchArgs,
    /// Metric id or name that scores every test, replacing the test set's and behaviours'
    /// (repeatable).
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
    /// Run parameter for the body template, `key=value` (value as JSON, else text; repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Most USD the run may spend (endpoint and judge calls at their endpoints' prices); no
    /// test starts once it is spent.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,
    /// Label stored on the run, `key=value`, e.g. `branch=main` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Which tests run.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Run one part of a split of the tests by id, `I/N` with I from 1 to N: N CI jobs with
    /// `--shard 1/N` ... `--shard N/N` together run every (filtered) test once.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// How many times each test runs, 1 to 100: a test passes by majority of its repetitions,
    /// and tests whose repetitions disagree are reported as flaky.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = repeats_range())]
    pub repeats: u32,
    /// Once the run has ended, compare it with a base run and print what changed: `latest` (the
    /// latest completed or partial run of the pair before it), a run id, or labels the base
    /// must carry, `key=value[,key=value...]` (e.g. `branch=main`).
    #[arg(long, value_name = "latest|RUN|KEY=VALUE")]
    pub compare_to: Option<String>,
    /// Regression gate and Markdown summary of the comparison.
    #[command(flatten)]
    pub regression: RegressionArgs,
    /// Gate and report.
    #[command(flatten)]
    pub outcome: OutcomeArgs,
}

/// Which tests a run takes: within a flag any value matches, across flags all must.
#[derive(Debug, Default, Args)]
pub struct FilterArgs {
    /// Only tests of this category (repeatable).
    #[arg(long = "filter-category", value_name = "CATEGORY")]
    pub categories: Vec<String>,
    /// Only tests of this topic (repeatable).
    #[arg(long = "filter-topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Only tests of this behaviour, id or name (repeatable).
    #[arg(long = "filter-behavior", value_name = "BEHAVIOR")]
    pub behaviors: Vec<String>,
    /// Only the test with this id (repeatable).
    #[arg(long = "filter-test-id", value_name = "ID")]
    pub test_ids: Vec<String>,
    /// Only tests whose metadata has `key=value` (repeatable: all must hold).
    #[arg(long = "filter-metadata", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
}

/// What to do with a comparison: the regression gate and the Markdown summary.
#[derive(Debug, Default, Args)]
pub struct RegressionArgs {
    /// Exit with code 1 when some test regressed (passed in the base, not in the head).
    /// With `execute`, the pass-rate gate then applies only when `--fail-under` is given.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Write a Markdown summary of the comparison (totals, regressions, fixes, flaky tests) to
    /// this file, e.g. `$GITHUB_STEP_SUMMARY` or a merge-request comment. With `execute` and no
    /// `--compare-to`, or no base run yet, it has the run's own totals and flaky tests.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// `compare [BASE] HEAD`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// `HEAD`, or `BASE HEAD` (run ids). Without BASE, the base is the latest completed or
    /// partial run of the head's test set and endpoint before it (with `--base-label`'s labels).
    #[arg(num_args = 1..=2, required = true, value_name = "RUN")]
    pub runs: Vec<String>,
    /// Without BASE: a label the base must carry, `key=value` (repeatable), e.g.
    /// `branch=main`.
    #[arg(long = "base-label", value_name = "KEY=VALUE")]
    pub base_labels: Vec<String>,
    /// Regression gate and Markdown summary.
    #[command(flatten)]
    pub regression: RegressionArgs,
}

/// `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The suite file, YAML or JSON (`-` reads standard input).
    #[arg(short, long)]
    pub file: PathBuf,
    /// The test set to run (id or name); may be left out when the file has one.
    #[arg(long)]
    pub test_set: Option<String>,
    /// The endpoint to run it against (id or name); may be left out when the file has one.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The database of the server inside the process: a SQLite file's path, created if missing
    /// [default: ./.assay/assay.db], or a URL as `serve --database` takes (`sqlite://PATH`,
    /// `postgres://USER@HOST:PORT/DB`). Not with `--server`.
    #[arg(long, conflicts_with = "server", value_name = "PATH|URL")]
    pub database: Option<String>,
    /// Mode and concurrency.
    #[command(flatten)]
    pub dispatch: DispatchArgs,
    /// How many times each test runs, 1 to 100 (as `execute --repeats`).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = repeats_range())]
    pub repeats: u32,
    /// Gate and report.
    #[command(flatten)]
    pub outcome: OutcomeArgs,
}

/// `rescore`.
#[derive(Debug, Args)]
pub struct RescoreArgs {
    /// Test set and endpoint.
    #[command(flatten)]
    pub pair: PairArgs,
    /// Run whose outputs to score (default: the latest completed one).
    #[arg(long)]
    pub run: Option<String>,
    /// Mode and concurrency.
    #[command(flatten)]
    pub dispatch: DispatchArgs,
    /// Metric id or name (repeatable).
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
    /// Which of the run's outputs are scored.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Gate and report.
    #[command(flatten)]
    pub outcome: OutcomeArgs,
}

/// `watch` and `retry-errors`: a run by id.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Run id.
    pub run: String,
    /// Gate and report.
    #[command(flatten)]
    pub outcome: OutcomeArgs,
}

/// What to do with a finished run: the CI gate and the report file.
#[derive(Debug, Args)]
pub struct OutcomeArgs {
    /// Exit with code 3 when the pass rate is under this: a fraction (`0.9`) or a percentage
    /// (`90%`). Default: any test that did not pass fails the gate.
    #[arg(long, value_parser = parse_rate)]
    pub fail_under: Option<f64>,
    /// Report options.
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Where and how to write a report.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Report file; its extension (`.xml`, `.json`, `.csv`) picks the format unless
    /// `--format` is given.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, ignore_case = true)]
    pub format: Option<ReportFormat>,
}

/// `report RUN`.
#[derive(Debug, Args)]
pub struct ReportCommandArgs {
    /// Run id.
    pub run: String,
    /// Report options; without `--report` the report goes to standard output (JUnit unless
    /// `--format` says otherwise).
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// JUnit XML, read natively by GitHub Actions, GitLab and Jenkins.
    Junit,
    /// The run, its summary and every result, in proto JSON.
    Json,
    /// One row per result, with a score, verdict and reason column per metric.
    Csv,
}

/// Reads `0.9` or `90%` as a rate in 0..=1.
fn parse_rate(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.trim().strip_suffix('%') {
        Some(percent) => (percent, 100.0),
        None => (text.trim(), 1.0),
    };
    let rate = number
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{text:?} is not a number"))?
        / scale;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "{text:?} is out of range: give a fraction in 0..1 or a percentage in 0%..100%"
        ))
    }
}

/// `--repeats`: 1 to the server's limit.
fn repeats_range() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(crate::domain::MAX_REPEATS))
}

/// Reads `I/N` (1 <= I <= N) as the 0-based shard `(I - 1, N)`.
fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let wrong = || format!("{text:?} is not a shard: give I/N with 1 <= I <= N, e.g. 2/4");
    let (index, count) = text.split_once('/').ok_or_else(wrong)?;
    let index: u32 = index.trim().parse().map_err(|_| wrong())?;
    let count: u32 = count.trim().parse().map_err(|_| wrong())?;
    if index == 0 || index > count {
        return Err(wrong());
    }
    Ok((index - 1, count))
}

#[cfg(test)]
mod tests {
    use super::{parse_rate, parse_shard};

    #[test]
    fn shards_are_one_based_on_the_command_line() {
        assert_eq!(parse_shard("2/4"), Ok((1, 4)));
        assert_eq!(parse_shard("1/1"), Ok((0, 1)));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_fractions_or_percentages() {
        assert_eq!(parse_rate("0.9"), Ok(0.9));
        assert_eq!(parse_rate("90%"), Ok(0.9));
        assert_eq!(parse_rate("1"), Ok(1.0));
        assert!(parse_rate("90").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("abc").is_err());
    }
}
