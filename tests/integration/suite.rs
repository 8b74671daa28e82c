//! Suite files through the real `assay` binary: `apply -f` (declarative, all or nothing,
//! idempotent) and `eval -f` (a one-shot run on an embedded database, or on `--server`), and
//! the exit codes CI acts on.

use std::path::Path;
use std::process::Output;

use assay::proto::v1 as pb;
use serde_json::Value;

use crate::app_server::Target;
use crate::fixtures::{TARGET_BODY, stored_tests};
use crate::harness::Server;

/// Runs `assay ARGS` in `dir`; against `server` when given, else with no server at all (no
/// `ASSAY_SERVER`), as `eval` runs on a fresh machine.
pub async fn assay(server: Option<&Server>, dir: &Path, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("ASSAY_SERVER")
        .env("ASSAY_LOG", "warn")
        .stdin(std::process::Stdio::null());
    if let Some(server) = server {
        command.env("ASSAY_SERVER", server.url());
    }
    command.output().await.expect("run the assay binary")
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The resources of `apply --json`'s answer, as (kind, name, action, tests).
fn applied(output: &Output) -> Vec<(String, String, String, Value)> {
    assert_eq!(code(output), 0, "{}", stderr(output));
    let answer: Value = serde_json::from_slice(&output.stdout).expect("one JSON answer");
    answer["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
                r["tests"].clone(),
            )
        })
        .collect()
}

/// A suite on `target`: a judge endpoint and the judge metric that names it (by name, in the same
/// file), a `contains` metric, a behaviour, the application's endpoint, and a test set of
/// `tests` (YAML list items).
fn suite(target: &Target, tests: &str) -> String {
    format!(
        r#"metrics:
  - name: judged
    threshold: 0.5
    llmJudge: {{judgeEndpoint: judge, evaluationPrompt: "Is it the right city?"}}
  - name: says-paris
    contains: {{values: [Paris]}}
behaviors:
  - name: geography
    metrics: [says-paris]
endpoints:
  - name: judge
    openaiChat: {{baseUrl: "{url}/judge/v1", model: judge-model}}
  - name: app
    http:
      url: "{url}/answer"
      bodyTemplate: '{body}'
      responseMapping: {{output: $.output}}
testSets:
  - name: geo
    metrics: [judged]
    tests:
{tests}"#,
        url = target.url,
        body = TARGET_BODY,
    )
}

/// Two tests the application answers with Paris, keyed.
const TWO_TESTS: &str = r#"      - {key: fr, prompt: "capital of France?", behavior: geography, metadata: {answer: Paris}}
      - {key: light, prompt: "city of light?", metadata: {answer: "It is Paris"}}
"#;

#[tokio::test]
async fn apply_creates_then_changes_nothing_then_updates_what_changed() {
    let server = Server::start().await;
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("suite.yaml");
    std::fs::write(&file, suite(&target, TWO_TESTS)).unwrap();

    let first = applied(
        &assay(
            Some(&server),
            dir.path(),
            &["apply", "-f", "suite.yaml", "--json"],
        )
        .await,
    );
    let order: Vec<(&str, &str)> = first
        .iter()
        .map(|(kind, name, _, _)| (kind.as_str(), name.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("endpoint", "judge"),
            ("endpoint", "app"),
            ("metric", "judged"),
            ("metric", "says-paris"),
            ("behavior", "geography"),
            ("test_set", "geo"),
        ],
        "dependency order: endpoints, metrics, behaviours, test sets"
    );
    assert!(
        first.iter().all(|r| r.2 == "APPLY_ACTION_CREATED"),
        "{first:?}"
    );
    assert_eq!(first[5].3["created"], 2);

    // The judge metric names the judge endpoint of the same file.
    let judge = server
        .endpoints()
        .get_endpoint(pb::GetEndpointRequest {
            endpoint: "judge".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let metric = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "judged".into(),
        })
        .await
        .unwrap()
        .into_inner();
    match metric.kind {
        Some(pb::metric::Kind::LlmJudge(j)) => assert_eq!(j.judge_endpoint, judge.id),
        other => panic!("not a judge metric: {other:?}"),
    }
    let before = stored_tests(&server, "geo").await;

    // Applying the same file again changes nothing.
    let second = applied(
        &assay(
            Some(&server),
            dir.path(),
            &["apply", "-f", "suite.yaml", "--json"],
        )
        .await,
    );
    assert!(
        second.iter().all(|r| r.2 == "APPLY_ACTION_UNCHANGED"),
        "{second:?}"
    );
    assert_eq!(second[5].3["unchanged"], 2);
    assert_eq!(second[5].3.get("created"), None);
    assert_eq!(
        stored_tests(&server, "geo").await,
        before,
        "a re-apply touched the tests"
    );

    // A changed test is updated in place (same id), a new one appended, a dropped one removed;
    // a changed metric is updated, the rest left alone.
    let changed = suite(
        &target,
        r#"      - {key: fr, prompt: "capital of France, please?", behavior: geography, metadata: {answer: Paris}}
      - {key: seine, prompt: "city on the Seine?", metadata: {answer: Paris}}
"#,
    )
    .replace("values: [Paris]", "values: [Paris, paris]");
    std::fs::write(&file, changed).unwrap();
    let third = applied(
        &assay(
            Some(&server),
            dir.path(),
            &["apply", "-f", "suite.yaml", "--json"],
        )
        .await,
    );
    let action = |name: &str| third.iter().find(|r| r.1 == name).unwrap().2.clone();
    assert_eq!(action("says-paris"), "APPLY_ACTION_UPDATED");
    assert_eq!(action("judged"), "APPLY_ACTION_UNCHANGED");
    assert_eq!(action("geo"), "APPLY_ACTION_UNCHANGED");
    let tests = &third[5].3;
    assert_eq!(
        (&tests["created"], &tests["updated"], &tests["removed"]),
        (&1.into(), &1.into(), &1.into())
    );
    let after = stored_tests(&server, "geo").await;
    let prompts: Vec<&str> = after.iter().map(|t| t.prompt.as_str()).collect();
    assert_eq!(
        prompts,
        ["capital of France, please?", "city on the Seine?"]
    );
    assert_eq!(after[0].id, before[0].id, "an updated test keeps its id");
    assert_eq!(after[0].key, "fr");
}

#[tokio::test]
async fn apply_with_a_bad_item_anywhere_creates_nothing() {
    let server = Server::start().await;
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Everything is valid but the second test, which has no prompt.
    let bad = suite(
        &target,
        "      - {key: fr, prompt: \"capital of France?\"}\n      - {key: empty, category: x}\n",
    );
    std::fs::write(dir.path().join("bad.yaml"), bad).unwrap();
    let output = assay(Some(&server), dir.path(), &["apply", "-f", "bad.yaml"]).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("test_sets[0].tests[1].prompt"),
        "{}",
        stderr(&output)
    );
    // A judge metric naming an endpoint that is nowhere.
    let unknown =
        suite(&target, TWO_TESTS).replace("judgeEndpoint: judge", "judgeEndpoint: nobody");
    std::fs::write(dir.path().join("unknown.yaml"), unknown).unwrap();
    let output = assay(Some(&server), dir.path(), &["apply", "-f", "unknown.yaml"]).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(stderr(&output).contains("nobody"), "{}", stderr(&output));
    // A field the suite format does not have: told before anything is sent.
    std::fs::write(
        dir.path().join("typo.yaml"),
        "testSets: [{name: s, tets: []}]\n",
    )
    .unwrap();
    let output = assay(Some(&server), dir.path(), &["apply", "-f", "typo.yaml"]).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(stderr(&output).contains("tets"), "{}", stderr(&output));

    let metrics = server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let endpoints = server
        .endpoints()
        .list_endpoints(pb::ListEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(metrics.metrics.is_empty(), "{:?}", metrics.metrics);
    assert!(endpoints.endpoints.is_empty(), "{:?}", endpoints.endpoints);
    assert_eq!(target.calls(), 0);
}

#[tokio::test]
async fn eval_runs_a_suite_end_to_end_with_no_server_and_exits_with_the_gate() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.yaml"), suite(&target, TWO_TESTS)).unwrap();

    let output = assay(
        None,
        dir.path(),
        &[
            "eval",
            "-f",
            "suite.yaml",
            "--endpoint",
            "app",
            "--report",
            "report.xml",
        ],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("2 passed"), "{stdout}");
    let report = std::fs::read_to_string(dir.path().join("report.xml")).unwrap();
    assert_eq!(report.matches("<testcase").count(), 2, "{report}");
    assert!(
        dir.path().join(".assay/assay.db").exists(),
        "the default database"
    );

    // Once more on the same database, with a test the application gets wrong: the suite is
    // applied again (no duplicates) and the gate fails.
    let wrong = format!(
        "{TWO_TESTS}      - {{key: it, prompt: \"capital of Italy?\", metadata: {{answer: Milan}}}}\n"
    );
    std::fs::write(dir.path().join("suite.yaml"), suite(&target, &wrong)).unwrap();
    let output = assay(
        None,
        dir.path(),
        &["eval", "-f", "suite.yaml", "--endpoint", "app", "--json"],
    )
    .await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let last: Value = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("runFinished").is_some())
        .expect("a runFinished event");
    assert_eq!(last["runFinished"]["total"], 3);
    assert_eq!(last["runFinished"]["failed"], 1);
}

#[tokio::test]
async fn eval_exit_codes_tell_input_errors_gates_and_outages_apart() {
    let server = Server::start().await;
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.yaml"), suite(&target, TWO_TESTS)).unwrap();
    let eval = |extra: &'static [&'static str]| {
        let mut args = vec!["eval", "-f", "suite.yaml"];
        args.extend_from_slice(extra);
        args
    };

    // 1: input errors, all before any endpoint is called (and before anything is stored).
    for (args, says) in [
        (
            eval(&["--endpoint", "app", "--report", "no/such/dir/r.xml"]),
            "no/such/dir/r.xml",
        ),
        (eval(&[]), "2 endpoints (judge, app)"),
        (eval(&["--endpoint", "app", "--test-set", "nope"]), "nope"),
        (vec!["eval", "-f", "missing.yaml"], "missing.yaml"),
    ] {
        let output = assay(Some(&server), dir.path(), &args).await;
        assert_eq!(code(&output), 1, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = assay(
        None,
        dir.path(),
        &[
            "--server",
            "http://127.0.0.1:1",
            "eval",
            "-f",
            "suite.yaml",
            "--endpoint",
            "app",
        ],
    )
    .await;
    assert_eq!(code(&output), 1, "unreachable server: {}", stderr(&output));
    assert_eq!(target.calls(), 0, "an input error called the endpoint");

    // 2: bad arguments.
    let output = assay(Some(&server), dir.path(), &eval(&["--mode", "fast"])).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));

    // 0 on `--server`, then 4 when the endpoint is down: an outage is not a failed gate.
    let output = assay(Some(&server), dir.path(), &eval(&["--endpoint", "app"])).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let down = suite(&target, TWO_TESTS).replace(
        &format!("{}/answer", target.url),
        "http://127.0.0.1:1/answer",
    );
    std::fs::write(dir.path().join("down.yaml"), down).unwrap();
    let output = assay(
        Some(&server),
        dir.path(),
        &["eval", "-f", "down.yaml", "--endpoint", "app"],
    )
    .await;
    assert_eq!(code(&output), 4, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("could not be judged"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn eval_honours_a_concurrency_above_the_default_of_16() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tests: String = (0..40)
        .map(|i| {
            format!(
                "      - {{prompt: \"t{i}\", metadata: {{answer: Paris, delay_ms: \"300\"}}}}\n"
            )
        })
        .collect();
    let file = suite(&target, &tests).replace("metrics: [judged]", "metrics: [says-paris]");
    std::fs::write(dir.path().join("wide.yaml"), file).unwrap();
    let output = assay(
        None,
        dir.path(),
        &[
            "eval",
            "-f",
            "wide.yaml",
            "--endpoint",
            "app",
            "--max-concurrency",
            "40",
        ],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(target.max_in_flight(), 40);
    // The start line tells the concurrency the server chose.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(parallel, 40 at a time)"), "{stdout}");
}

#[tokio::test]
async fn import_replace_swaps_the_tests_and_duplicates_are_warned_about() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "prompt\none\ntwo\none\n").unwrap();
    let output = assay(
        Some(&server),
        dir.path(),
        &["test-set", "import", "a.csv", "-t", "s", "--create"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("a.csv:line 4: repeats the prompt of line 2"),
        "{}",
        stderr(&output)
    );
    // Appending the file again: every test is already there.
    let output = assay(
        Some(&server),
        dir.path(),
        &["test-set", "import", "a.csv", "-t", "s"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("line 3: the test set has a test with this prompt"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stored_tests(&server, "s").await.len(), 6);

    std::fs::write(dir.path().join("b.csv"), "prompt\nthree\n").unwrap();
    let output = assay(
        Some(&server),
        dir.path(),
        &["test-set", "import", "b.csv", "-t", "s", "--replace"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
    let prompts: Vec<String> = stored_tests(&server, "s")
        .await
        .into_iter()
        .map(|t| t.prompt)
        .collect();
    assert_eq!(prompts, ["three"]);
}

#[tokio::test]
async fn serve_help_lists_only_the_server_options() {
    let dir = tempfile::tempdir().unwrap();
    let output = assay(None, dir.path(), &["serve", "--help"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--database"), "{help}");
    assert!(help.contains("--max-concurrency-cap"), "{help}");
    // The key the server requires is the server's option too.
    assert!(help.contains("--api-key"), "{help}");
    assert!(help.contains("ASSAY_API_KEY"), "{help}");
    assert!(
        !help.contains("--server"),
        "a client flag in serve's help:\n{help}"
    );
    assert!(
        !help.contains("--json"),
        "a client flag in serve's help:\n{help}"
    );
    assert!(
        !dir.path().join("assay.db").exists(),
        "--help started the server"
    );
}

#[tokio::test]
async fn eval_takes_a_database_url_as_serve_does() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.yaml"), suite(&target, TWO_TESTS)).unwrap();
    let run = |database: String| {
        let dir = dir.path().to_path_buf();
        async move {
            let args = [
                "eval",
                "-f",
                "suite.yaml",
                "--endpoint",
                "app",
                "--database",
                &database,
            ];
            assay(None, &dir, &args).await
        }
    };

    // `sqlite://PATH` is the file at PATH (its folder created), as `serve --database` reads it.
    let output = run("sqlite://runs/suite.db".into()).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(dir.path().join("runs/suite.db").exists());
    assert!(
        !dir.path().join("sqlite:").exists(),
        "a folder named after the scheme"
    );

    // And PostgreSQL: the one-shot run on a shared database.
    let database = crate::postgres::TestDatabase::create().await;
    let output = run(database.url().to_string()).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("2 passed"), "{stdout}");
    // Applied again on the same database: nothing new, and the run passes again.
    let again = run(database.url().to_string()).await;
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("unchanged"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[tokio::test]
async fn ctrl_c_during_eval_cancels_the_run_of_its_embedded_server() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let slow: String = (0..20)
        .map(|i| {
            format!(
                "      - {{prompt: \"s{i}\", metadata: {{answer: Paris, delay_ms: \"500\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(dir.path().join("suite.yaml"), suite(&target, &slow)).unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"))
        .args([
            "eval",
            "-f",
            "suite.yaml",
            "--endpoint",
            "app",
            "--mode",
            "sequential",
        ])
        .current_dir(dir.path())
        .env_remove("ASSAY_SERVER")
        .env("ASSAY_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the assay binary");
    let (run_id, output) = crate::cli::interrupt_once_started(child).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("run {run_id} was cancelled")),
        "{stderr}"
    );
    // No advice to watch a run that no server goes on with.
    assert!(!stderr.contains("assay watch"), "{stderr}");

    // The run is CANCELLED in the database, not left RUNNING to be resumed by the next server.
    let server = Server::start_on(&dir.path().join(".assay/assay.db")).await;
    let run = crate::fixtures::get_run(&server, &run_id).await;
    assert_eq!(run.status(), pb::RunStatus::Cancelled);
}
