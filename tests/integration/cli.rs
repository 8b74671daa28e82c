//! The `assay` client as users run it: the built binary as a real process, against the real
//! server (in-process, on 127.0.0.1) and the real HTTP target. Each test checks what the command
//! promises through its exit code, its output, its report file, and what the server stored.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use assay::proto::v1 as pb;
use quick_xml::events::Event as Xml;
use serde_json::Value;

use crate::app_server::Target;
use crate::fixtures::{
    contains, create_endpoint, create_metric, create_test_set, exact, execute, execute_request,
    http_endpoint, start, stored_tests, test,
};
use crate::harness::Server;

/// Exit code of a failed gate (documented in `assay::cli`).
const GATE_FAILED: i32 = 3;

/// Exit code of an input error: a bad file, an unknown name, a server that cannot be reached.
const INPUT_ERROR: i32 = 1;

/// Runs `assay ARGS` in `dir` against `server`; waits for it to exit.
async fn assay(server: &Server, dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(dir)
        .env("ASSAY_SERVER", server.url())
        .env("ASSAY_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run the assay binary")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

/// A server, a target, an endpoint `bot` on it and a `contains` metric `says-paris`; tests
/// pass when their `answer` metadata mentions Paris.
async fn setup() -> (Server, Target, tempfile::TempDir) {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("bot", &target.url)).await;
    create_metric(&server, contains("says-paris", &["Paris"])).await;
    (server, target, tempfile::tempdir().expect("temp dir"))
}

/// Tests of which two pass, one fails and one is an endpoint error.
fn mixed_tests() -> Vec<pb::Test> {
    vec![
        test("capital of France?", "Paris", &[("answer", "Paris")]),
        test("city of light?", "Paris", &[("answer", "It is Paris")]),
        test("capital of Italy?", "Rome", &[("answer", "Milan")]),
        test("broken", "", &[("fail_status", "500")]),
    ]
}

/// The elements of an XML document, in document order: name, attributes, and the names of
/// their ancestors.
fn elements(xml: &str) -> Vec<(String, HashMap<String, String>, Vec<String>)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut open: Vec<String> = Vec::new();
    let mut found = Vec::new();
    loop {
        // An empty element closes at once; a start tag stays open until its end.
        let (element, opens) = match reader.read_event().expect("well-formed XML") {
            Xml::Start(e) => (e, true),
            Xml::Empty(e) => (e, false),
            Xml::End(_) => {
                open.pop();
                continue;
            }
            Xml::Eof => return found,
            _ => continue,
        };
        let name = element.name().into_inner().to_string();
        let attributes = element
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("attribute value");
                (a.key.into_inner().to_string(), value.into_owned())
            })
            .collect();
        found.push((name.clone(), attributes, open.clone()));
        if opens {
            open.push(name);
        }
    }
}

#[tokio::test]
async fn import_reads_jsonl_csv_and_yaml() {
    let (server, _target, dir) = setup().await;
    let files = [
        (
            "tests.jsonl",
            "{\"prompt\": \"capital of France?\", \"expected_response\": \"Paris\", \"category\": \"capitals\", \"metadata\": {\"level\": 1}}\n\n{\"prompt\": \"2 + 2?\", \"topic\": \"sums\"}\n",
        ),
        (
            "tests.csv",
            "prompt,expected_response,category,topic,metadata.level\ncapital of France?,Paris,capitals,,1\n\"2 + 2?\",,,sums,\n",
        ),
        (
            "tests.yaml",
            "tests:\n  - prompt: capital of France?\n    expected_response: Paris\n    category: capitals\n    metadata: {level: 1}\n  - prompt: 2 + 2?\n    topic: sums\n",
        ),
    ];
    for (file, text) in files {
        std::fs::write(dir.path().join(file), text).unwrap();
        let set = format!("from-{file}");
        let output = assay(
            &server,
            dir.path(),
            &["test-set", "import", file, "--test-set", &set, "--create"],
        )
        .await;
        assert_eq!(code(&output), 0, "{file}: {}", stderr(&output));
        assert!(
            stdout(&output).contains("imported 2 tests"),
            "{file}: {}",
            stdout(&output)
        );

        let tests = stored_tests(&server, &set).await;
        assert_eq!(tests.len(), 2, "{file}");
        assert_eq!(tests[0].prompt, "capital of France?", "{file}");
        assert_eq!(
            tests[0].expected_response.as_deref(),
            Some("Paris"),
            "{file}"
        );
        assert_eq!(tests[0].category, "capitals", "{file}");
        assert_eq!(
            tests[0].metadata.get("level").map(String::as_str),
            Some("1"),
            "{file}"
        );
        assert_eq!(tests[1].prompt, "2 + 2?", "{file}");
        assert_eq!(tests[1].expected_response, None, "{file}");
        assert_eq!(tests[1].topic, "sums", "{file}");
        assert!(tests[1].metadata.is_empty(), "{file}");
    }
}

#[tokio::test]
async fn an_empty_expected_response_is_imported_checked_and_reported_apart_from_none() {
    let (server, _target, dir) = setup().await;
    let mut trimmed = exact("empty-answer");
    if let Some(pb::metric::Kind::ExactMatch(e)) = trimmed.kind.as_mut() {
        e.trim = true;
    }
    create_metric(&server, trimmed).await;
    // `""` is the empty text, an empty cell is none (the answer " " is empty once trimmed).
    let csv = "prompt,expected_response,metadata.answer\n\
               say nothing,\"\",\" \"\n\
               say nothing again,\"\",Paris\n\
               anything,,Paris\n";
    std::fs::write(dir.path().join("tests.csv"), csv).unwrap();
    let output = assay(
        &server,
        dir.path(),
        &[
            "test-set",
            "import",
            "tests.csv",
            "-t",
            "quiet",
            "--create",
            "--metric",
            "empty-answer",
        ],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let expected: Vec<Option<String>> = stored_tests(&server, "quiet")
        .await
        .into_iter()
        .map(|t| t.expected_response)
        .collect();
    assert_eq!(expected, [Some(String::new()), Some(String::new()), None]);

    let (run, results, _) = execute(&server, execute_request("quiet", "bot")).await;
    let verdict = |prompt: &str| {
        let r = results.iter().find(|r| r.prompt == prompt).unwrap();
        let m = &r.metric_results[0];
        (r.expected_response.clone(), m.passed, m.error.clone())
    };
    assert_eq!(
        verdict("say nothing"),
        (Some(String::new()), true, String::new())
    );
    assert_eq!(
        verdict("say nothing again"),
        (Some(String::new()), false, String::new())
    );
    let (none, passed, error) = verdict("anything");
    assert_eq!((none, passed), (None, false));
    assert!(error.contains("needs an expected response"), "{error}");

    let output = assay(
        &server,
        dir.path(),
        &["report", &run.id, "--report", "run.csv"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = std::fs::read_to_string(dir.path().join("run.csv")).unwrap();
    let row = |prompt: &str| {
        let line = report.lines().find(|l| l.contains(&format!(",{prompt},")));
        line.unwrap_or_else(|| panic!("no row for {prompt}: {report}"))
            .to_string()
    };
    assert!(
        row("say nothing").contains(",say nothing,\"\","),
        "{report}"
    );
    assert!(row("anything").contains(",anything,,"), "{report}");
    let output = assay(
        &server,
        dir.path(),
        &["report", &run.id, "--format", "json"],
    )
    .await;
    let json: Value = serde_json::from_str(&stdout(&output)).expect("JSON report");
    let by_prompt = |prompt: &str| {
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["prompt"] == prompt)
            .unwrap()
            .clone()
    };
    assert_eq!(by_prompt("say nothing")["expectedResponse"], "");
    assert!(by_prompt("anything").get("expectedResponse").is_none());
}

#[tokio::test]
async fn a_bad_file_reports_every_bad_line_and_imports_nothing() {
    let (server, _target, dir) = setup().await;
    create_test_set(&server, "existing", &[], vec![]).await;
    let args = [
        "behavior",
        "create",
        "--name",
        "factual",
        "--metric",
        "says-paris",
    ];
    assert_eq!(code(&assay(&server, dir.path(), &args).await), 0);
    let text = [
        r#"{"prompt": "fine", "behavior": "factual"}"#,
        r#"{"prompt": ""}"#,
        r#"{"prompt": "fine too"}"#,
        r#"{"promt": "typo"}"#,
        r#"not json"#,
        r#"{"prompt": "x", "metadata": {"nested": {"no": 1}}}"#,
    ]
    .join("\n");
    std::fs::write(dir.path().join("bad.jsonl"), text).unwrap();
    std::fs::write(
        dir.path().join("unknown-behavior.jsonl"),
        "{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"behavior\": \"no-such-behavior\"}\n",
    )
    .unwrap();

    let output = assay(
        &server,
        dir.path(),
        &["test-set", "import", "bad.jsonl", "-t", "existing"],
    )
    .await;
    assert_eq!(code(&output), INPUT_ERROR, "{}", stderr(&output));
    let errors = stderr(&output);
    for line in [
        "bad.jsonl:line 2:",
        "bad.jsonl:line 4:",
        "bad.jsonl:line 5:",
        "bad.jsonl:line 6:",
    ] {
        assert!(errors.contains(line), "{line} missing from:\n{errors}");
    }
    assert!(errors.contains("4 bad rows, nothing imported"), "{errors}");
    assert!(
        !errors.contains("line 1:") && !errors.contains("line 3:"),
        "{errors}"
    );

    let output = assay(
        &server,
        dir.path(),
        &[
            "test-set",
            "import",
            "unknown-behavior.jsonl",
            "-t",
            "existing",
        ],
    )
    .await;
    assert_eq!(code(&output), INPUT_ERROR, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("unknown-behavior.jsonl:line 2:"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("no-such-behavior"),
        "{}",
        stderr(&output)
    );
    assert!(
        stored_tests(&server, "existing").await.is_empty(),
        "a bad file imported tests"
    );

    // With --create, a bad file does not even leave an empty test set behind.
    let output = assay(
        &server,
        dir.path(),
        &[
            "test-set",
            "import",
            "bad.jsonl",
            "-t",
            "new-set",
            "--create",
        ],
    )
    .await;
    assert_eq!(code(&output), INPUT_ERROR);
    let missing = server
        .test_sets()
        .get_test_set(pb::GetTestSetRequest {
            test_set: "new-set".into(),
        })
        .await
        .expect_err("the test set was created");
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn ten_thousand_rows_import_in_file_order() {
    let (server, _target, dir) = setup().await;
    let rows: Vec<String> = (0..10_000)
        .map(|i| format!(r#"{{"prompt": "question {i}: what is the capital of France?", "expected_response": "Paris", "metadata": {{"row": {i}}}}}"#))
        .collect();
    std::fs::write(dir.path().join("big.jsonl"), rows.join("\n")).unwrap();
    let output = assay(
        &server,
        dir.path(),
        &["test-set", "import", "big.jsonl", "-t", "big", "--create"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let tests = stored_tests(&server, "big").await;
    assert_eq!(tests.len(), 10_000);
    // Sent in pieces, stored in the file's order.
    for (i, test) in tests.iter().enumerate() {
        assert_eq!(test.metadata["row"], i.to_string());
    }
}

#[tokio::test]
async fn execute_writes_a_junit_report_with_a_testcase_per_test() {
    let (server, _target, dir) = setup().await;
    create_test_set(&server, "geo", &["says-paris"], mixed_tests()).await;

    let output = assay(
        &server,
        dir.path(),
        &["execute", "geo", "bot", "--report", "report.xml"],
    )
    .await;
    assert_eq!(code(&output), GATE_FAILED, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("FAILED capital of Italy?"), "{text}");
    assert!(text.contains("ERROR  broken"), "{text}");
    assert!(
        text.contains("4 tests, 2 passed, 1 failed, 1 errored (pass rate 50.0%)"),
        "{text}"
    );
    assert!(
        text.contains("says-paris  3          2       0        0.667"),
        "{text}"
    );

    let xml = std::fs::read_to_string(dir.path().join("report.xml")).expect("report written");
    let elements = elements(&xml);
    let named = |name: &str| -> Vec<_> { elements.iter().filter(|(n, _, _)| n == name).collect() };
    let (_, suites, _) = named("testsuites")[0];
    let (_, suite, parents) = named("testsuite")[0];
    assert_eq!(parents, &["testsuites"]);
    for counts in [suites, suite] {
        assert_eq!(counts["tests"], "4");
        assert_eq!(counts["failures"], "1");
        assert_eq!(counts["errors"], "1");
    }
    assert_eq!(suite["name"], "geo");
    let cases = named("testcase");
    assert_eq!(cases.len(), 4);
    for (_, case, parents) in &cases {
        assert_eq!(parents, &["testsuites", "testsuite"]);
        assert_eq!(case["classname"], "geo");
        assert!(case["time"].parse::<f64>().is_ok(), "{case:?}");
    }
    let names: Vec<&str> = cases.iter().map(|(_, c, _)| c["name"].as_str()).collect();
    for prompt in [
        "capital of France?",
        "city of light?",
        "capital of Italy?",
        "broken",
    ] {
        assert!(names.contains(&prompt), "{prompt} not in {names:?}");
    }
    let failures = named("failure");
    assert_eq!(failures.len(), 1);
    let (_, failure, parents) = failures[0];
    assert_eq!(parents.last().map(String::as_str), Some("testcase"));
    assert!(
        failure["message"].starts_with("says-paris (score 0): "),
        "{failure:?}"
    );
    assert_eq!(failure["type"], "metric");
    let errors = named("error");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].1["message"].contains("500"), "{:?}", errors[0].1);
}

#[tokio::test]
async fn exit_codes_tell_pass_gate_failure_bad_usage_and_server_errors() {
    let (server, target, dir) = setup().await;
    create_test_set(&server, "geo", &["says-paris"], mixed_tests()).await;
    create_test_set(
        &server,
        "easy",
        &["says-paris"],
        vec![test("capital of France?", "Paris", &[("answer", "Paris")])],
    )
    .await;

    // Every test passes: 0, whatever the mode's case.
    let output = assay(
        &server,
        dir.path(),
        &["execute", "easy", "bot", "--mode", "SEQUENTIAL"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let output = assay(
        &server,
        dir.path(),
        &["execute", "geo", "bot", "--fail-under", "0.5"],
    )
    .await;
    assert_eq!(
        code(&output),
        0,
        "a 50% pass rate meets --fail-under 0.5: {}",
        stderr(&output)
    );
    let output = assay(
        &server,
        dir.path(),
        &["execute", "geo", "bot", "--fail-under", "90%"],
    )
    .await;
    assert_eq!(code(&output), GATE_FAILED);
    assert!(
        stderr(&output).contains("pass rate 50.0% is under 90.0%"),
        "{}",
        stderr(&output)
    );

    // A bad mode, rate or report extension: 2, and nothing reaches the server.
    let (calls, runs) = (target.calls(), list_runs(&server).await);
    for args in [
        &["execute", "geo", "bot", "--mode", "fast"][..],
        &["execute", "geo", "bot", "--fail-under", "150"],
        &["execute", "geo", "bot", "--report", "report.txt"],
        &["execute", "geo"],
    ] {
        let output = assay(&server, dir.path(), args).await;
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
    }
    assert_eq!(target.calls(), calls, "a usage error called the endpoint");
    assert_eq!(
        list_runs(&server).await,
        runs,
        "a usage error started a run"
    );

    // HOST:PORT without a scheme is the server over plain HTTP.
    let bare = server.url().trim_start_matches("http://").to_string();
    let output = assay(&server, dir.path(), &["--server", &bare, "metric", "list"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    // No server there: 1; not a URL: 2.
    let output = assay(
        &server,
        dir.path(),
        &["--server", "http://127.0.0.1:1", "metric", "list"],
    )
    .await;
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains("cannot connect to http://127.0.0.1:1"),
        "{}",
        stderr(&output)
    );
    let output = assay(
        &server,
        dir.path(),
        &["--server", "not a url", "metric", "list"],
    )
    .await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));

    // The server says no: 1, with the code and the message.
    let output = assay(&server, dir.path(), &["execute", "no-such-set", "bot"]).await;
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("NotFound"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no-such-set"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn failing_tests_are_shown_one_by_one_up_to_fifty_then_counted() {
    let (server, _target, dir) = setup().await;
    let tests = (0..60)
        .map(|i| test(&format!("question {i}"), "", &[("answer", "Rome")]))
        .collect();
    create_test_set(&server, "all-fail", &["says-paris"], tests).await;

    let output = assay(
        &server,
        dir.path(),
        &["execute", "all-fail", "bot", "--report", "all.xml"],
    )
    .await;
    assert_eq!(code(&output), GATE_FAILED);
    let text = stdout(&output);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("FAILED question "))
            .count(),
        50,
        "{text}"
    );
    assert!(
        text.contains("... and 10 more tests that did not pass"),
        "{text}"
    );
    let xml = std::fs::read_to_string(dir.path().join("all.xml")).unwrap();
    assert_eq!(
        elements(&xml)
            .iter()
            .filter(|(n, _, _)| n == "failure")
            .count(),
        60
    );
}

async fn list_runs(server: &Server) -> usize {
    server
        .execution()
        .list_test_runs(pb::ListTestRunsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list runs")
        .into_inner()
        .runs
        .len()
}

#[tokio::test]
async fn json_prints_each_event_as_one_line_ending_with_the_summary() {
    let (server, _target, dir) = setup().await;
    create_test_set(&server, "geo", &["says-paris"], mixed_tests()).await;

    let output = assay(&server, dir.path(), &["execute", "geo", "bot", "--json"]).await;
    assert_eq!(code(&output), GATE_FAILED);
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(events.len(), 6, "run, four results, summary");
    assert_eq!(events[0]["runStarted"]["total"], 4);
    assert_eq!(events[0]["runStarted"]["status"], "RUN_STATUS_RUNNING");
    for result in &events[1..5] {
        assert!(
            result["result"]["status"]
                .as_str()
                .unwrap()
                .starts_with("RESULT_STATUS_"),
            "{result}"
        );
    }
    let summary = &events[5]["runFinished"];
    assert_eq!(summary["status"], "RUN_STATUS_PARTIAL");
    assert_eq!(
        (
            summary["passed"].as_u64(),
            summary["failed"].as_u64(),
            summary["errored"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );

    // `watch` replays a finished run the same way.
    let run = events[0]["runStarted"]["id"].as_str().unwrap();
    let output = assay(
        &server,
        dir.path(),
        &["watch", run, "--json", "--fail-under", "0"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let last = stdout(&output)
        .lines()
        .last()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    assert_eq!(last.unwrap()["runFinished"]["runId"], run);
}

#[tokio::test]
async fn report_writes_the_report_of_a_stored_run() {
    let (server, _target, dir) = setup().await;
    let set = create_test_set(&server, "geo", &["says-paris"], mixed_tests()).await;
    let (run, _, _) = execute(&server, execute_request(&set.id, "bot")).await;

    let output = assay(
        &server,
        dir.path(),
        &["report", &run.id, "--report", "run.csv"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let mut reader = csv::Reader::from_path(dir.path().join("run.csv")).expect("CSV report");
    let headers = reader.headers().unwrap().clone();
    assert!(
        headers.iter().any(|h| h == "says-paris.reason"),
        "{headers:?}"
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 4);
    let statuses: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "PASSED").count(), 2);

    let output = assay(
        &server,
        dir.path(),
        &["report", &run.id, "--format", "json"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON report on stdout");
    assert_eq!(report["run"]["id"], run.id.as_str());
    assert_eq!(report["summary"]["status"], "RUN_STATUS_PARTIAL");
    assert_eq!(report["results"].as_array().map(Vec::len), Some(4));

    // Without --report: JUnit on standard output.
    let output = assay(&server, dir.path(), &["report", &run.id]).await;
    assert_eq!(code(&output), 0);
    assert_eq!(
        elements(&stdout(&output))
            .iter()
            .filter(|(n, _, _)| n == "testcase")
            .count(),
        4
    );

    let output = assay(
        &server,
        dir.path(),
        &["report", "01a21787-0000-7000-8000-000000000000"],
    )
    .await;
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("NotFound"), "{}", stderr(&output));
}

#[tokio::test]
async fn catalogue_commands_create_from_files_and_flags_list_get_and_delete() {
    let (server, target, dir) = setup().await;
    std::fs::write(
        dir.path().join("metrics.yaml"),
        "- name: exact\n  exactMatch: {ignoreCase: true}\n- name: has-digit\n  regex: {pattern: '\\d'}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("endpoint.json"),
        serde_json::json!({"name": "bot2", "http": {"url": format!("{}/answer", target.url), "responseMapping": {"output": "$.output"}}}).to_string(),
    )
    .unwrap();
    let ok = |output: &Output| assert_eq!(code(output), 0, "{}", stderr(output));

    ok(&assay(
        &server,
        dir.path(),
        &["metric", "create", "-f", "metrics.yaml"],
    )
    .await);
    ok(&assay(
        &server,
        dir.path(),
        &[
            "metric",
            "create",
            "--name",
            "starts-with-a",
            "--set",
            "regex.pattern=^a",
        ],
    )
    .await);
    ok(&assay(
        &server,
        dir.path(),
        &[
            "endpoint",
            "create",
            "--file",
            "endpoint.json",
            "--set",
            "maxConcurrency=2",
        ],
    )
    .await);
    ok(&assay(
        &server,
        dir.path(),
        &[
            "behavior",
            "create",
            "--name",
            "precise",
            "--metric",
            "exact",
            "--metric",
            "has-digit",
        ],
    )
    .await);

    let metric = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "has-digit".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(metric.kind, Some(pb::metric::Kind::Regex(ref r)) if r.pattern == "\\d"),
        "{metric:?}"
    );
    let endpoint = server
        .endpoints()
        .get_endpoint(pb::GetEndpointRequest {
            endpoint: "bot2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(endpoint.max_concurrency, 2);
    let behavior = server
        .behaviors()
        .get_behavior(pb::GetBehaviorRequest {
            behavior: "precise".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(behavior.metrics.len(), 2);

    // Similarity options by their proto names; the tokenizer is text as written.
    ok(&assay(
        &server,
        dir.path(),
        &[
            "metric",
            "create",
            "--name",
            "bleu-intl",
            "--set",
            "bleu.tokenize=intl",
            "--set",
            "bleu.lowercase=true",
        ],
    )
    .await);
    let output = assay(
        &server,
        dir.path(),
        &["--json", "metric", "get", "bleu-intl"],
    )
    .await;
    ok(&output);
    let got: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(got["bleu"]["tokenize"], "intl", "{got}");
    assert_eq!(got["bleu"]["lowercase"], true, "{got}");

    let output = assay(&server, dir.path(), &["metric", "list"]).await;
    ok(&output);
    for name in ["says-paris", "exact", "has-digit"] {
        assert!(
            stdout(&output).lines().any(|l| l.contains(name)),
            "{name} not listed:\n{}",
            stdout(&output)
        );
    }
    let output = assay(&server, dir.path(), &["--json", "metric", "get", "exact"]).await;
    ok(&output);
    let got: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(got["exactMatch"]["ignoreCase"], true);

    // A misspelt field is an input error, and nothing is created.
    let output = assay(
        &server,
        dir.path(),
        &[
            "metric",
            "create",
            "--name",
            "typo",
            "--set",
            "contanis.values=[\"x\"]",
        ],
    )
    .await;
    assert_eq!(code(&output), INPUT_ERROR);
    assert!(stderr(&output).contains("contanis"), "{}", stderr(&output));

    // One file of several kinds: all checked first, then created in dependency order.
    std::fs::write(
        dir.path().join("typo.yaml"),
        "metrics:\n  - {name: m1, contains: {values: [a]}}\ntestSets:\n  - {name: s1, metrcs: [m1]}\n",
    )
    .unwrap();
    let output = assay(&server, dir.path(), &["create", "-f", "typo.yaml"]).await;
    assert_eq!(code(&output), INPUT_ERROR);
    assert!(stderr(&output).contains("metrcs"), "{}", stderr(&output));
    let missing = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "m1".into(),
        })
        .await;
    assert_eq!(
        missing.expect_err("m1 was created").code(),
        tonic::Code::NotFound
    );
    std::fs::write(
        dir.path().join("all.yaml"),
        "testSets:\n  - {name: s1, metrics: [m1]}\nbehaviors:\n  - {name: b1, metrics: [m1]}\nmetrics:\n  - {name: m1, contains: {values: [a]}}\n",
    )
    .unwrap();
    ok(&assay(&server, dir.path(), &["create", "-f", "all.yaml"]).await);
    let set = server
        .test_sets()
        .get_test_set(pb::GetTestSetRequest {
            test_set: "s1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.metrics.len(), 1);

    ok(&assay(&server, dir.path(), &["behavior", "delete", "precise"]).await);
    let output = assay(&server, dir.path(), &["behavior", "get", "precise"]).await;
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("NotFound"));
}

#[tokio::test]
async fn test_set_metrics_and_rescore_and_last_run() {
    let (server, _target, dir) = setup().await;
    // No endpoint error: the run completes, so it is the last run and can be rescored.
    let mut tests = mixed_tests();
    tests.pop();
    create_test_set(&server, "geo", &[], tests).await;
    create_metric(&server, contains("says-rome", &["Rome"])).await;
    let ok = |output: &Output| assert_eq!(code(output), 0, "{}", stderr(output));

    let output = assay(
        &server,
        dir.path(),
        &["test-set", "metrics", "add", "geo", "says-paris"],
    )
    .await;
    ok(&output);
    assert!(stdout(&output).contains("says-paris"));
    let output = assay(
        &server,
        dir.path(),
        &["execute", "geo", "bot", "--fail-under", "0"],
    )
    .await;
    ok(&output);
    let output = assay(&server, dir.path(), &["--json", "last-run", "geo", "bot"]).await;
    ok(&output);
    let last: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(last["passed"], 2);
    // For people, the same summary table as `execute` ends with.
    let output = assay(&server, dir.path(), &["last-run", "geo", "bot"]).await;
    ok(&output);
    let text = stdout(&output);
    assert!(
        text.contains("COMPLETED") && text.contains("2 passed"),
        "{text}"
    );
    assert!(text.contains("MEAN SCORE"), "{text}");

    // Rescoring with a metric no answer meets fails every scored test: the gate says so.
    let output = assay(
        &server,
        dir.path(),
        &[
            "rescore",
            "geo",
            "bot",
            "--metric",
            "says-rome",
            "--mode",
            "Sequential",
            "--report",
            "rescore.json",
        ],
    )
    .await;
    assert_eq!(code(&output), GATE_FAILED, "{}", stderr(&output));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("rescore.json")).unwrap())
            .unwrap();
    assert_eq!(report["run"]["kind"], "RUN_KIND_RESCORE");
    assert_eq!(report["run"]["mode"], "EXECUTION_MODE_SEQUENTIAL");
    assert_eq!(report["run"]["maxConcurrency"], 1);
    assert_eq!(report["summary"]["failed"], 3);

    // `runs list`: the execution and the rescore, newest first, as a table or JSON lines.
    let output = assay(&server, dir.path(), &["runs", "list", "geo", "bot"]).await;
    ok(&output);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two runs: {text}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{text}"
    );
    assert!(
        lines[1].contains("RESCORE") && lines[2].contains("EXECUTION"),
        "{text}"
    );
    let output = assay(&server, dir.path(), &["--json", "runs", "list"]).await;
    ok(&output);
    let runs: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["kind"], "RUN_KIND_RESCORE");

    let output = assay(
        &server,
        dir.path(),
        &["test-set", "metrics", "remove", "geo", "says-paris"],
    )
    .await;
    ok(&output);
    let output = assay(
        &server,
        dir.path(),
        &["--json", "test-set", "metrics", "list", "geo"],
    )
    .await;
    ok(&output);
    assert_eq!(stdout(&output).trim(), "", "the metric was not removed");
}

#[tokio::test]
async fn retry_errors_calls_only_the_errored_tests_into_a_new_run() {
    let (server, target, dir) = setup().await;
    create_test_set(&server, "geo", &["says-paris"], mixed_tests()).await;
    let output = assay(&server, dir.path(), &["execute", "geo", "bot", "--json"]).await;
    assert_eq!(code(&output), GATE_FAILED);
    let first: Value = serde_json::from_str(stdout(&output).lines().next().unwrap()).unwrap();
    let source = first["runStarted"]["id"].as_str().unwrap().to_string();
    let calls_before = target.calls();

    let output = assay(
        &server,
        dir.path(),
        &["retry-errors", &source, "--json", "--fail-under", "50%"],
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        target.calls() - calls_before,
        3,
        "only the errored test is called (its HTTP 500 retried twice by default)"
    );
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let started = &events[0]["runStarted"];
    assert_eq!(started["sourceRunId"], source.as_str());
    assert_ne!(started["id"], source.as_str());
    let summary = &events.last().unwrap()["runFinished"];
    assert_eq!(summary["total"], 4, "the new run counts every test");
    assert_eq!(
        (summary["passed"].as_u64(), summary["errored"].as_u64()),
        (Some(2), Some(1)),
        "copied passes stay, the test that fails every call is still an error"
    );
}

#[tokio::test]
async fn cancel_prints_the_summary_of_the_cancelled_run() {
    let (server, _target, dir) = setup().await;
    let slow = (0..20)
        .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "500")]))
        .collect();
    create_test_set(&server, "slow", &["says-paris"], slow).await;
    let mut request = execute_request("slow", "bot");
    request.mode = pb::ExecutionMode::Sequential as i32;
    let (run, _stream) = start(&server, request).await;

    let output = assay(&server, dir.path(), &["cancel", &run.id]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("run {} CANCELLED", run.id)),
        "{text}"
    );
    let output = assay(&server, dir.path(), &["--json", "cancel", &run.id]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let cancelled: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(cancelled["status"], "RUN_STATUS_CANCELLED");
}

#[tokio::test]
async fn a_run_whose_every_result_is_an_error_exits_4_not_as_a_failed_gate() {
    let (server, _target, dir) = setup().await;
    let down = (0..3)
        .map(|i| test(&format!("q{i}"), "", &[("fail_status", "503")]))
        .collect();
    create_test_set(&server, "down", &["says-paris"], down).await;

    let output = assay(&server, dir.path(), &["execute", "down", "bot"]).await;
    assert_eq!(code(&output), 4, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("could not be judged: the run FAILED"),
        "{}",
        stderr(&output)
    );
}

/// Sends SIGINT (Ctrl-C) to an `assay` command (its stdout piped) once it printed its run's
/// start line; the run's id and what the command gave.
pub(crate) async fn interrupt_once_started(
    mut child: tokio::process::Child,
) -> (String, std::process::Output) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let run_id = loop {
        let line = stdout.next_line().await.unwrap().expect("a run line");
        if let Some(rest) = line.strip_prefix("run ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    (run_id, child.wait_with_output().await.unwrap())
}

#[tokio::test]
async fn ctrl_c_stops_following_says_how_to_watch_or_cancel_and_leaves_the_run_going() {
    let (server, _target, dir) = setup().await;
    let slow = (0..20)
        .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "500")]))
        .collect();
    create_test_set(&server, "slow", &["says-paris"], slow).await;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["execute", "slow", "bot", "--mode", "sequential"])
        .current_dir(dir.path())
        .env("ASSAY_SERVER", server.url())
        .env("ASSAY_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the assay binary");
    let (run_id, output) = interrupt_once_started(child).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("assay watch {run_id}"))
            && stderr.contains(&format!("assay cancel {run_id}")),
        "{stderr}"
    );
    let run = crate::fixtures::get_run(&server, &run_id).await;
    assert_eq!(run.status, pb::RunStatus::Running as i32, "the run stopped");
    server
        .execution()
        .cancel_test_run(pb::CancelTestRunRequest { run: run_id })
        .await
        .unwrap();
}

#[tokio::test]
async fn health_says_serving_and_exits_0_and_fails_when_no_server_answers() {
    let (server, _target, dir) = setup().await;
    let serving = assay(&server, dir.path(), &["health"]).await;
    assert_eq!(code(&serving), 0, "{}", stderr(&serving));
    assert_eq!(stdout(&serving).trim(), "SERVING");

    let url = server.url().to_string();
    server.stop().await;
    let gone = tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["health", "--server", &url])
        .output()
        .await
        .expect("run the assay binary");
    assert_eq!(code(&gone), 1, "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("cannot connect"),
        "{}",
        stderr(&gone)
    );
}

/// A server with the test set `suite` of `tests`, scored by exact match, and the endpoint
/// `switch` on a target whose answers the test sets per prompt; and a folder to run in.
async fn switch_suite(tests: Vec<pb::Test>) -> (Server, Target, tempfile::TempDir) {
    let server = Server::start().await;
    let target = Target::start().await;
    crate::regressions::switch_endpoint(&server, &target).await;
    create_metric(&server, exact("exact")).await;
    create_test_set(&server, "suite", &["exact"], tests).await;
    (server, target, tempfile::tempdir().unwrap())
}

#[tokio::test]
async fn execute_compares_with_the_last_run_on_main_and_fails_on_a_regression() {
    let tests = vec![
        pb::Test {
            category: "geo".into(),
            ..test("q1", "a1", &[])
        },
        pb::Test {
            category: "math".into(),
            ..test("q2", "a2", &[])
        },
    ];
    let (server, target, dir) = switch_suite(tests).await;
    target.set_answer("q1", &["a1"]);
    target.set_answer("q2", &["wrong"]);
    let main = assay(
        &server,
        dir.path(),
        &[
            "--json",
            "execute",
            "suite",
            "switch",
            "--label",
            "branch=main",
            "--fail-under",
            "0",
        ],
    )
    .await;
    assert_eq!(code(&main), 0, "{}", stderr(&main));
    let base_id = stdout(&main)
        .lines()
        .find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some(v["runStarted"]["id"].as_str()?.to_string())
        })
        .expect("the run id");

    target.set_answer("q1", &["wrong now"]);
    target.set_answer("q2", &["a2"]);
    let head = assay(
        &server,
        dir.path(),
        &[
            "execute",
            "suite",
            "switch",
            "--label",
            "branch=feature",
            "--compare-to",
            "branch=main",
            "--fail-on-regression",
            "--summary-md",
            "summary.md",
        ],
    )
    .await;
    // Exit code 1: a regression (the issue's choice), whatever the pass rate.
    assert_eq!(code(&head), 1, "{}", stderr(&head));
    let text = stdout(&head);
    let regressed = text.find("REGRESSED").expect("a regressed row");
    let fixed = text.find("FIXED").expect("a fixed row");
    assert!(regressed < fixed, "regressions come first:\n{text}");
    assert!(text.contains(&base_id), "{text}");
    assert!(text.contains("1 regressed, 1 fixed"), "{text}");
    assert!(
        stderr(&head).contains("1 test(s) regressed"),
        "{}",
        stderr(&head)
    );
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.contains("## Assay: regressions found"), "{md}");
    assert!(
        md.contains("### Regressions (1)") && md.contains("| q1 | exact 1.00 → 0.00 |"),
        "{md}"
    );
    assert!(md.contains("### Fixes (1)"), "{md}");

    // `last-run --label` finds the last run on main, not the later run of the feature branch.
    let on_main = assay(
        &server,
        dir.path(),
        &[
            "--json",
            "last-run",
            "suite",
            "switch",
            "--label",
            "branch=main",
        ],
    )
    .await;
    assert_eq!(code(&on_main), 0, "{}", stderr(&on_main));
    let summary: Value = serde_json::from_str(stdout(&on_main).trim()).unwrap();
    assert_eq!(summary["runId"], base_id.as_str(), "{summary}");
    let nowhere = assay(
        &server,
        dir.path(),
        &["last-run", "suite", "switch", "--label", "branch=nowhere"],
    )
    .await;
    assert_eq!(code(&nowhere), 0, "{}", stderr(&nowhere));
    assert!(
        stdout(&nowhere).contains("no completed run"),
        "{}",
        stdout(&nowhere)
    );

    // `compare HEAD` finds the base by label; without the gate flag a regression is exit 0.
    let runs = server
        .execution()
        .list_test_runs(pb::ListTestRunsRequest {
            labels: HashMap::from([("branch".to_string(), "feature".to_string())]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    let head_id = runs[0].id.clone();
    let compared = assay(
        &server,
        dir.path(),
        &["compare", &head_id, "--base-label", "branch=main"],
    )
    .await;
    assert_eq!(code(&compared), 0, "{}", stderr(&compared));
    assert!(stdout(&compared).contains(&base_id));
    let gated = assay(
        &server,
        dir.path(),
        &["compare", &base_id, &head_id, "--fail-on-regression"],
    )
    .await;
    assert_eq!(code(&gated), 1);
    let json = assay(
        &server,
        dir.path(),
        &["--json", "compare", &base_id, &head_id],
    )
    .await;
    let response: Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(response["summary"]["regressed"], 1);
    assert_eq!(response["tests"][0]["change"], "TEST_CHANGE_REGRESSED");

    // Filters and shards on the command line: nothing chosen is the server's refusal (1), a
    // bad shard a usage error (2).
    let filtered = assay(
        &server,
        dir.path(),
        &[
            "execute",
            "suite",
            "switch",
            "--filter-category",
            "geo",
            "--fail-under",
            "0",
        ],
    )
    .await;
    assert_eq!(code(&filtered), 0, "{}", stderr(&filtered));
    assert!(
        stdout(&filtered).contains("1 tests"),
        "{}",
        stdout(&filtered)
    );
    let nothing = assay(
        &server,
        dir.path(),
        &["execute", "suite", "switch", "--filter-topic", "none"],
    )
    .await;
    assert_eq!(code(&nothing), 1);
    assert!(
        stderr(&nothing).contains("FailedPrecondition"),
        "{}",
        stderr(&nothing)
    );
    let bad_shard = assay(
        &server,
        dir.path(),
        &["execute", "suite", "switch", "--shard", "0/2"],
    )
    .await;
    assert_eq!(code(&bad_shard), 2, "{}", stderr(&bad_shard));
    let needs_base = assay(
        &server,
        dir.path(),
        &["execute", "suite", "switch", "--fail-on-regression"],
    )
    .await;
    assert_eq!(code(&needs_base), 2, "{}", stderr(&needs_base));
}

#[tokio::test]
async fn the_first_run_of_a_branch_compares_nothing_and_an_empty_shard_passes() {
    let tests = vec![test("q1", "a1", &[]), test("q2", "a2", &[])];
    let (server, target, dir) = switch_suite(tests).await;
    target.set_answer("q1", &["a1"]);
    target.set_answer("q2", &["a2"]);

    // No run on main yet: nothing to regress from, so the gate is the pass rate's alone.
    let first = assay(
        &server,
        dir.path(),
        &[
            "execute",
            "suite",
            "switch",
            "--compare-to",
            "branch=main",
            "--fail-on-regression",
            "--summary-md",
            "first.md",
        ],
    )
    .await;
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert!(
        stderr(&first).contains("nothing compared"),
        "{}",
        stderr(&first)
    );
    let md = std::fs::read_to_string(dir.path().join("first.md")).unwrap();
    assert!(md.contains("## Assay: run"), "{md}");
    assert!(md.contains("2 tests, 2 passed"), "{md}");
    // A base named by id must exist: that is the user's mistake, not a first run.
    let unknown = assay(
        &server,
        dir.path(),
        &[
            "execute",
            "suite",
            "switch",
            "--compare-to",
            "0190ec1c-8ba3-7000-8000-000000000000",
        ],
    )
    .await;
    assert_eq!(code(&unknown), 1, "{}", stderr(&unknown));

    // The Markdown summary of a run alone: its totals and its flaky tests.
    target.set_answer("q2", &["a2", "wrong", "a2"]);
    let alone = assay(
        &server,
        dir.path(),
        &[
            "execute",
            "suite",
            "switch",
            "--repeats",
            "3",
            "--mode",
            "sequential",
            "--summary-md",
            "alone.md",
        ],
    )
    .await;
    assert_eq!(code(&alone), 0, "{}", stderr(&alone));
    let md = std::fs::read_to_string(dir.path().join("alone.md")).unwrap();
    assert!(md.contains("### Flaky tests (1)"), "{md}");
    assert!(md.contains("| q2 | 2 of 3 |"), "{md}");

    // Two tests in twenty shards: most shards are empty, and an empty shard passes (exit 0).
    let mut ran = 0;
    for index in 1..=20 {
        let shard = format!("{index}/20");
        let output = assay(
            &server,
            dir.path(),
            &["--json", "execute", "suite", "switch", "--shard", &shard],
        )
        .await;
        assert_eq!(code(&output), 0, "shard {shard}: {}", stderr(&output));
        ran += stdout(&output)
            .lines()
            .filter(|l| l.contains("\"result\""))
            .count();
    }
    assert_eq!(ran, 2, "every test ran in exactly one shard");
}

#[tokio::test]
async fn execute_shows_tokens_and_cost_and_stops_at_its_budget() {
    let (server, target, dir) = setup().await;
    create_endpoint(&server, crate::spend::priced("priced", &target)).await;
    // Each test: 2 tokens in at 1 USD, 1 out at 2 USD: 4 USD.
    let tests = (0..3).map(|i| test(&format!("q {i}"), "", &[("answer", "Paris")]));
    create_test_set(&server, "geo", &["says-paris"], tests.collect()).await;

    let output = assay(
        &server,
        dir.path(),
        &[
            "execute",
            "geo",
            "priced",
            "--mode",
            "sequential",
            "--budget-usd",
            "5",
        ],
    )
    .await;
    let text = stdout(&output);
    assert_eq!(code(&output), 4, "{text}{}", stderr(&output));
    assert!(text.contains("BUDGET_EXCEEDED"), "{text}");
    assert!(text.contains("budget of 5 USD reached"), "{text}");
    assert!(
        text.contains("endpoint: 6 tokens (4 in, 2 out), 8.0000 USD; judges: 0 tokens"),
        "{text}"
    );
    assert!(
        stderr(&output).contains("stopped at its budget"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn execute_repeats_marks_flaky_tests_in_the_junit_report_and_the_summary() {
    let server = Server::start().await;
    let target = Target::start().await;
    crate::regressions::switch_endpoint(&server, &target).await;
    create_metric(&server, exact("exact")).await;
    let tests = vec![test("q1", "a1", &[]), test("q2", "a2", &[])];
    create_test_set(&server, "suite", &["exact"], tests).await;
    let dir = tempfile::tempdir().unwrap();
    target.set_answer("q1", &["a1"]);
    target.set_answer("q2", &["a2"]);
    let base = &["execute", "suite", "switch", "--repeats", "3"];
    let main = assay(
        &server,
        dir.path(),
        &[base, &["--label", "branch=main"][..]].concat(),
    )
    .await;
    assert_eq!(code(&main), 0, "{}", stderr(&main));
    let text = stdout(&main);
    assert!(text.contains("started: 2 tests x 3 repeats"), "{text}");
    assert!(text.contains("3 repeats: 0 flaky"), "{text}");

    // q1 passes two calls of three, q2 one: both flaky, and q2 flipped to a majority failure.
    target.set_answer("q1", &["a1", "wrong", "a1"]);
    target.set_answer("q2", &["a2", "wrong", "wrong"]);
    let head = assay(
        &server,
        dir.path(),
        &[
            base,
            &[
                "--compare-to",
                "branch=main",
                "--summary-md",
                "summary.md",
                "--report",
                "report.xml",
                "--fail-under",
                "0",
            ][..],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code(&head), 0, "{}", stderr(&head));
    let text = stdout(&head);
    assert!(text.contains("2 tests, 1 passed, 1 failed"), "{text}");
    assert!(text.contains("3 repeats: 2 flaky"), "{text}");
    // Each failing repetition is told as it comes, with its number.
    assert!(text.contains("FAILED q1 (repetition "), "{text}");
    assert!(text.contains("1 regressed"), "{text}");
    let xml = std::fs::read_to_string(dir.path().join("report.xml")).unwrap();
    assert!(
        xml.contains(r#"tests="2" failures="1" errors="0""#),
        "{xml}"
    );
    assert_eq!(
        xml.matches(r#"<property name="flaky" value="true"/>"#)
            .count(),
        2,
        "{xml}"
    );
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.contains("### Regressions (1)"), "{md}");
    assert!(md.contains("### Flaky tests (2)"), "{md}");
    assert!(md.contains("| q2 | 100% → 33% | regressed |"), "{md}");

    let bad = assay(
        &server,
        dir.path(),
        &["execute", "suite", "switch", "--repeats", "101"],
    )
    .await;
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--repeats"), "{}", stderr(&bad));
}
