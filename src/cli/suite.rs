//! Suite files: `apply -f FILE` makes the server's catalogue match one (one `ApplySuite` call,
//! all or nothing), and `eval -f FILE` applies one and runs it, on a server inside this process
//! (an embedded SQLite database) or, with `--server`, on a running one.

use std::path::Path;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::CliError;
use super::args::{EvalArgs, ExecuteArgs, FilterArgs, Global, PairArgs, RegressionArgs};
use super::client::Clients;
use super::json::{from_json, read_document, to_json};
use super::output::{Output, table};
use super::report::Destination;
use super::run;
use crate::config::ServeConfig;
use crate::proto::v1 as pb;
use crate::server::{self, ServerError};

/// Reads and checks a suite file (the `create -f` sections, test sets with their `tests`);
/// every item is checked before anything is sent.
pub fn read_suite(path: &Path) -> Result<pb::ApplySuiteRequest, CliError> {
    let document = read_document(path)?;
    if !document.is_object() {
        return Err(CliError::input(format!(
            "{}: expected an object with the lists metrics, behaviors, endpoints, testSets",
            path.display()
        )));
    }
    from_json(document, "ApplySuiteRequest", &path.display().to_string())
}

/// `apply -f FILE`: prints what was created, updated and left unchanged.
pub async fn apply(global: &Global, out: &Output, path: &Path) -> Result<(), CliError> {
    let suite = read_suite(path)?;
    let clients = Clients::connect(global).await?;
    apply_on(&clients, out, suite).await
}

/// Applies a suite through `clients` and prints the outcome.
async fn apply_on(
    clients: &Clients,
    out: &Output,
    suite: pb::ApplySuiteRequest,
) -> Result<(), CliError> {
    let applied = clients.test_sets().apply_suite(suite).await?.into_inner();
    if out.json {
        return Ok(out.value(&to_json(&applied, "ApplySuiteResponse"))?);
    }
    let rows: Vec<Vec<String>> = applied.resources.iter().map(applied_row).collect();
    out.note(table(&["ACTION", "KIND", "NAME", "TESTS"], &rows).trim_end())?;
    Ok(())
}

/// One applied resource as a row: action, kind, name and what happened to its tests.
fn applied_row(resource: &pb::AppliedResource) -> Vec<String> {
    let action = pb::ApplyAction::try_from(resource.action)
        .map(|a| {
            a.as_str_name()
                .trim_start_matches("APPLY_ACTION_")
                .to_lowercase()
        })
        .unwrap_or_default();
    let tests = resource.tests.as_ref().map_or_else(String::new, |t| {
        format!(
            "{} created, {} updated, {} removed, {} unchanged",
            t.created, t.updated, t.removed, t.unchanged
        )
    });
    vec![
        action,
        resource.kind.replace('_', " "),
        resource.name.clone(),
        tests,
    ]
}

/// The name of the one item of a suite section, when a flag does not name it.
fn the_one(
    given: Option<String>,
    names: Vec<&str>,
    what: &str,
    flag: &str,
) -> Result<String, CliError> {
    if let Some(name) = given {
        return Ok(name);
    }
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(CliError::input(format!(
            "the suite has no {what}s: name one with {flag}"
        ))),
        many => Err(CliError::input(format!(
            "the suite has {} {what}s ({}): name one with {flag}",
            many.len(),
            many.join(", ")
        ))),
    }
}

/// `eval -f FILE`: applies the suite and runs it with live progress, a report and the gate's
/// exit code. Everything that can be checked here (the file, the names, the report path) is
/// checked before the server is started or called.
pub async fn eval(global: &Global, out: &Output, args: EvalArgs) -> Result<(), CliError> {
    let suite = read_suite(&args.file)?;
    let test_set = the_one(
        args.test_set,
        suite.test_sets.iter().map(|t| t.name.as_str()).collect(),
        "test set",
        "--test-set",
    )?;
    let endpoint = the_one(
        args.endpoint,
        suite.endpoints.iter().map(|e| e.name.as_str()).collect(),
        "endpoint",
        "--endpoint",
    )?;
    Destination::of(&args.outcome.report, false)?;
    let execute = ExecuteArgs {
        pair: PairArgs { test_set, endpoint },
        dispatch: args.dispatch,
        metrics: Vec::new(),
        params: Vec::new(),
        outcome: args.outcome,
        budget_usd: None,
        labels: Vec::new(),
        filter: FilterArgs::default(),
        shard: None,
        repeats: args.repeats,
        compare_to: None,
        regression: RegressionArgs::default(),
    };
    if let Some(url) = &global.server {
        let clients = Clients::connect_to(global, url).await?;
        apply_on(&clients, out, suite).await?;
        return run::execute_on(&clients, out, execute).await;
    }
    let database = args
        .database
        .unwrap_or_else(|| Path::new(".assay").join("assay.db").display().to_string());
    let embedded = Embedded::start(&database).await?;
    let clients = Clients::connect_to(global, &embedded.url).await?;
    let outcome = async {
        apply_on(&clients, out, suite).await?;
        run::execute_on(&clients, out, execute).await
    }
    .await;
    // Nothing follows the run once this command ends: a run stopped by Ctrl-C is cancelled
    // rather than left RUNNING, to be resumed by whichever server opens the database next.
    let outcome = match outcome {
        Err(CliError::Interrupted(run)) if !run.is_empty() => {
            let cancel = pb::CancelTestRunRequest { run: run.clone() };
            clients.execution().cancel_test_run(cancel).await?;
            Err(CliError::Cancelled(run))
        }
        outcome => outcome,
    };
    drop(clients);
    embedded.stop().await?;
    outcome
}

/// A server inside this process on an embedded SQLite database, on a free loopback port.
struct Embedded {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl Embedded {
    /// Opens (creating it and its folder if missing) the database and starts serving.
    /// `database` is a SQLite file's path, or a URL as `serve --database` takes
    /// (`sqlite://PATH`, `postgres://...`).
    async fn start(database: &str) -> Result<Embedded, CliError> {
        let unusable =
            |e: &dyn std::fmt::Display| CliError::input(format!("--database {database}: {e}"));
        let url = if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            database.to_string()
        } else {
            let path = Path::new(
                database
                    .strip_prefix("sqlite://")
                    .or_else(|| database.strip_prefix("sqlite:"))
                    .unwrap_or(database),
            );
            if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder).map_err(|e| unusable(&e))?;
            }
            format!("sqlite://{}", path.display())
        };
        // Opened once here so that a database that cannot be used is an input error, told
        // before anything is sent (the server opens its own).
        server::open_store(&url).await.map_err(|e| unusable(&e))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let config = ServeConfig::from_env(address, url)
            .map_err(|e| CliError::usage(format!("the server settings (ASSAY_*): {e}")))?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Ok(Embedded {
            url: format!("http://{address}"),
            stop,
            task,
        })
    }

    /// Stops the server and waits for it to end.
    async fn stop(self) -> Result<(), CliError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CliError::input(format!("the embedded server failed: {e}"))),
            Err(e) => Err(CliError::input(format!("the embedded server failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn is_suite(value: &Value) -> bool {
        from_json::<pb::ApplySuiteRequest>(value.clone(), "ApplySuiteRequest", "suite").is_ok()
    }

    #[test]
    fn a_suite_file_is_the_create_format_with_tests_in_test_sets() {
        let yaml = "metrics:\n  - {name: m, contains: {values: [a]}}\nendpoints:\n  - {name: e, http: {url: 'http://127.0.0.1:1'}}\ntestSets:\n  - name: s\n    metrics: [m]\n    tests:\n      - {key: k1, prompt: p, expected_response: a}\n";
        let value: Value = serde_yaml_ng::from_str(yaml).unwrap();
        assert!(is_suite(&value));
        let bad: Value = serde_yaml_ng::from_str("testSets: [{name: s, tets: []}]").unwrap();
        assert!(!is_suite(&bad));
    }

    #[test]
    fn a_name_may_be_left_out_only_when_the_suite_has_one() {
        assert_eq!(
            the_one(None, vec!["a"], "endpoint", "--endpoint").unwrap(),
            "a"
        );
        assert_eq!(
            the_one(Some("b".into()), vec!["a", "c"], "endpoint", "--endpoint").unwrap(),
            "b"
        );
        let error = the_one(None, vec!["a", "c"], "endpoint", "--endpoint").unwrap_err();
        assert!(error.to_string().contains("a, c"), "{error}");
        assert_eq!(error.exit_code(), 1);
    }
}
