//! Regressions and selection: labels on runs, CompareRuns between runs of a real HTTP target
//! whose answers change between runs, and filters and shards choosing the tests.

use std::collections::{BTreeSet, HashMap};

use assay::proto::v1 as pb;
use tonic::Code;

use crate::app_server::Target;
use crate::fixtures::{
    create_endpoint, create_metric, create_test_set, exact, execute, execute_request,
    http_endpoint, rescore, test,
};
use crate::harness::Server;

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An endpoint `switch` on the target's `/switch`, whose answers the test sets between runs.
pub async fn switch_endpoint(server: &Server, target: &Target) -> pb::Endpoint {
    let mut endpoint = http_endpoint("switch", &target.url);
    if let Some(pb::endpoint::Target::Http(http)) = &mut endpoint.target {
        http.url = format!("{}/switch", target.url);
    }
    create_endpoint(server, endpoint).await
}

/// A test set `name` whose tests expect `expected` for each prompt, scored by exact match.
pub async fn exact_set(server: &Server, name: &str, prompts: &[(&str, &str)]) -> pb::TestSet {
    create_metric(server, exact("exact")).await;
    let tests = prompts.iter().map(|(p, e)| test(p, e, &[])).collect();
    create_test_set(server, name, &["exact"], tests).await
}

/// Executes with labels and returns the run as stored.
async fn run_labelled(server: &Server, set: &str, pairs: &[(&str, &str)]) -> pb::TestRunSummary {
    let request = pb::ExecuteRequest {
        labels: labels(pairs),
        ..execute_request(set, "switch")
    };
    execute(server, request).await.2
}

async fn compare(server: &Server, request: pb::CompareRunsRequest) -> pb::CompareRunsResponse {
    server
        .execution()
        .compare_runs(request)
        .await
        .expect("compare runs")
        .into_inner()
}

#[tokio::test]
async fn labels_are_stored_on_runs_and_find_them() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    exact_set(&server, "suite", &[("ping", "ping")]).await;
    let main = run_labelled(&server, "suite", &[("branch", "main"), ("commit", "a1")]).await;
    let dev = run_labelled(&server, "suite", &[("branch", "dev"), ("commit", "a1")]).await;

    let stored = crate::fixtures::get_run(&server, &main.run_id).await;
    assert_eq!(
        stored.labels,
        labels(&[("branch", "main"), ("commit", "a1")])
    );

    let list = |wanted: &[(&str, &str)]| {
        let request = pb::ListTestRunsRequest {
            labels: labels(wanted),
            ..Default::default()
        };
        let mut client = server.execution();
        async move {
            let runs = client
                .list_test_runs(request)
                .await
                .unwrap()
                .into_inner()
                .runs;
            runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(&[("commit", "a1")]).await,
        vec![dev.run_id.clone(), main.run_id.clone()]
    );
    assert_eq!(list(&[("branch", "main")]).await, vec![main.run_id.clone()]);
    assert!(
        list(&[("branch", "main"), ("commit", "b2")])
            .await
            .is_empty()
    );

    let last = |wanted: &[(&str, &str)]| {
        let request = pb::LastRunRequest {
            test_set: "suite".into(),
            endpoint: "switch".into(),
            labels: labels(wanted),
        };
        let mut client = server.execution();
        async move {
            client
                .last_run(request)
                .await
                .unwrap()
                .into_inner()
                .run
                .map(|r| r.run_id)
        }
    };
    assert_eq!(last(&[]).await, Some(dev.run_id.clone()));
    assert_eq!(last(&[("branch", "main")]).await, Some(main.run_id.clone()));
    assert_eq!(last(&[("branch", "release")]).await, None);

    let bad = server
        .execution()
        .execute(pb::ExecuteRequest {
            labels: labels(&[("Branch", "main")]),
            ..execute_request("suite", "switch")
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("labels") && bad.message().contains("\"Branch\""),
        "{}",
        bad.message()
    );
}

#[tokio::test]
async fn compare_runs_names_regressions_and_fixes_of_a_changing_target() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    // q1..q5 answered wrongly on main, q6 rightly; the feature branch fixes q1..q5, breaks q6.
    let prompts: Vec<(String, String)> = (1..=7)
        .map(|i| (format!("q{i}"), format!("a{i}")))
        .collect();
    let pairs: Vec<(&str, &str)> = prompts
        .iter()
        .map(|(p, e)| (p.as_str(), e.as_str()))
        .collect();
    let set = exact_set(&server, "suite", &pairs).await;
    for (prompt, expected) in &pairs {
        let right = matches!(*prompt, "q6" | "q7");
        target.set_answer(prompt, &[if right { expected } else { "wrong" }]);
    }
    let base = run_labelled(&server, "suite", &[("branch", "main")]).await;
    assert_eq!(base.passed, 2);
    // Meanwhile q7 leaves the set and q8 joins it.
    let tests = crate::fixtures::stored_tests(&server, &set.id).await;
    let q7 = tests.iter().find(|t| t.prompt == "q7").unwrap().id.clone();
    server
        .test_sets()
        .remove_tests(pb::RemoveTestsRequest {
            test_set: set.id.clone(),
            test_ids: vec![q7],
        })
        .await
        .unwrap();
    server
        .test_sets()
        .add_tests(pb::AddTestsRequest {
            test_set: set.id.clone(),
            tests: vec![test("q8", "a8", &[])],
        })
        .await
        .unwrap();
    for i in 1..=5 {
        target.set_answer(&format!("q{i}"), &[&format!("a{i}")]);
    }
    target.set_answer("q6", &["wrong now"]);
    // A later run on another branch must not become the base.
    let head = run_labelled(&server, "suite", &[("branch", "feature")]).await;
    run_labelled(&server, "suite", &[("branch", "other")]).await;

    let explicit = compare(
        &server,
        pb::CompareRunsRequest {
            head_run: head.run_id.clone(),
            base_run: base.run_id.clone(),
            ..Default::default()
        },
    )
    .await;
    let by_label = compare(
        &server,
        pb::CompareRunsRequest {
            head_run: head.run_id.clone(),
            base_labels: labels(&[("branch", "main")]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(explicit, by_label);
    let s = explicit.summary.clone().unwrap();
    assert_eq!(
        (s.head_run_id.as_str(), s.base_run_id.as_str()),
        (head.run_id.as_str(), base.run_id.as_str())
    );
    assert_eq!(
        (s.regressed, s.fixed, s.still_passing, s.still_failing),
        (1, 5, 0, 0)
    );
    assert_eq!((s.added, s.removed, s.errored, s.paired), (1, 1, 0, 6));
    assert!((s.base_pass_rate - 2.0 / 7.0).abs() < 1e-9);
    assert!((s.head_pass_rate - 5.0 / 7.0).abs() < 1e-9);
    // Exact McNemar, b = 1, c = 5, n = 6: 2 * (C(6,0) + C(6,1)) / 2^6 = 14/64.
    assert!(
        (s.mcnemar_p_value - 14.0 / 64.0).abs() < 1e-12,
        "{}",
        s.mcnemar_p_value
    );

    let changes: Vec<(&str, pb::TestChange)> = explicit
        .tests
        .iter()
        .map(|t| (t.prompt.as_str(), t.change()))
        .collect();
    use pb::TestChange::{Added, Fixed, Regressed, Removed};
    assert_eq!(
        changes,
        vec![
            ("q6", Regressed),
            ("q1", Fixed),
            ("q2", Fixed),
            ("q3", Fixed),
            ("q4", Fixed),
            ("q5", Fixed),
            ("q8", Added),
            ("q7", Removed),
        ]
    );
    let q6 = &explicit.tests[0];
    assert_eq!(
        (q6.base_status(), q6.head_status()),
        (pb::ResultStatus::Passed, pb::ResultStatus::Failed)
    );
    assert_eq!((q6.base_pass_rate, q6.head_pass_rate), (1.0, 0.0));
    let metric = &q6.metrics[0];
    assert_eq!(metric.metric_name, "exact");
    assert_eq!(
        (metric.base_score, metric.head_score, metric.score_delta),
        (Some(1.0), Some(0.0), Some(-1.0))
    );
    assert!(metric.base_passed && !metric.head_passed);
    let added = &explicit.tests[6];
    assert_eq!(added.base_status(), pb::ResultStatus::Unspecified);
    assert_eq!(added.metrics[0].base_score, None);
}

#[tokio::test]
async fn compare_runs_without_a_base_is_failed_precondition() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    exact_set(&server, "suite", &[("ping", "ping")]).await;
    let only = run_labelled(&server, "suite", &[("branch", "main")]).await;
    for base_labels in [labels(&[]), labels(&[("branch", "main")])] {
        let e = server
            .execution()
            .compare_runs(pb::CompareRunsRequest {
                head_run: only.run_id.clone(),
                base_labels,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
        assert!(e.message().contains(&only.run_id), "{}", e.message());
    }
    let e = server
        .execution()
        .compare_runs(pb::CompareRunsRequest {
            head_run: only.run_id.clone(),
            base_run: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn runs_of_different_test_sets_are_compared_by_prompt() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    exact_set(&server, "old", &[("capital of Italy?", "Rome")]).await;
    create_test_set(
        &server,
        "new",
        &["exact"],
        vec![test("capital of Italy?", "Rome", &[])],
    )
    .await;
    target.set_answer("capital of Italy?", &["Rome"]);
    let base = execute(&server, execute_request("old", "switch")).await.2;
    target.set_answer("capital of Italy?", &["Milan"]);
    let head = execute(&server, execute_request("new", "switch")).await.2;
    let c = compare(
        &server,
        pb::CompareRunsRequest {
            head_run: head.run_id,
            base_run: base.run_id,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(c.tests.len(), 1);
    assert_eq!(c.tests[0].change(), pb::TestChange::Regressed);
    assert!(!c.tests[0].base_test_id.is_empty());
    assert_ne!(c.tests[0].base_test_id, c.tests[0].test_id);
}

/// A test set of twelve tests over categories and topics, answered by echo.
async fn catalogued_set(server: &Server, target: &Target) -> Vec<pb::Test> {
    create_endpoint(server, http_endpoint("echo", &target.url)).await;
    create_metric(server, exact("exact")).await;
    let tests: Vec<pb::Test> = (0..12)
        .map(|i| pb::Test {
            category: ["geo", "math", "chat"][i % 3].into(),
            topic: ["europe", "asia"][i % 2].into(),
            ..test(
                &format!("t{i}"),
                &format!("t{i}"),
                &[("lang", ["en", "fr"][i % 2])],
            )
        })
        .collect();
    let set = create_test_set(server, "catalogued", &["exact"], tests).await;
    crate::fixtures::stored_tests(server, &set.id).await
}

/// The prompts a run with `filter` and `shard` took.
async fn chosen(
    server: &Server,
    filter: Option<pb::TestFilter>,
    shard: Option<pb::Shard>,
) -> BTreeSet<String> {
    let request = pb::ExecuteRequest {
        filter,
        shard,
        ..execute_request("catalogued", "echo")
    };
    let (run, results, summary) = execute(server, request).await;
    assert_eq!(run.total as usize, results.len());
    assert_eq!(summary.total as usize, results.len());
    results.into_iter().map(|r| r.prompt).collect()
}

fn prompts<'a>(tests: impl IntoIterator<Item = &'a pb::Test>) -> BTreeSet<String> {
    tests.into_iter().map(|t| t.prompt.clone()).collect()
}

#[tokio::test]
async fn filters_choose_tests_any_value_within_a_field_all_across() {
    let server = Server::start().await;
    let target = Target::start().await;
    let tests = catalogued_set(&server, &target).await;
    let filter = pb::TestFilter {
        categories: vec!["geo".into(), "math".into()],
        topics: vec!["europe".into()],
        ..Default::default()
    };
    let expected = prompts(
        tests
            .iter()
            .filter(|t| (t.category == "geo" || t.category == "math") && t.topic == "europe"),
    );
    assert_eq!(expected.len(), 4);
    assert_eq!(chosen(&server, Some(filter), None).await, expected);

    let by_metadata = pb::TestFilter {
        metadata: labels(&[("lang", "fr")]),
        test_ids: tests[..4].iter().map(|t| t.id.clone()).collect(),
        ..Default::default()
    };
    assert_eq!(
        chosen(&server, Some(by_metadata), None).await,
        prompts([&tests[1], &tests[3]])
    );

    let nothing = server
        .execution()
        .execute(pb::ExecuteRequest {
            filter: Some(pb::TestFilter {
                categories: vec!["history".into()],
                ..Default::default()
            }),
            ..execute_request("catalogued", "echo")
        })
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), Code::FailedPrecondition);
    assert!(
        nothing.message().contains("catalogued"),
        "{}",
        nothing.message()
    );

    let bad_id = server
        .execution()
        .execute(pb::ExecuteRequest {
            filter: Some(pb::TestFilter {
                test_ids: vec!["not-a-uuid".into()],
                ..Default::default()
            }),
            ..execute_request("catalogued", "echo")
        })
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    assert!(
        bad_id.message().contains("filter.test_ids[0]"),
        "{}",
        bad_id.message()
    );
}

/// The prompts shard `index` of `count` of the selection `filter` ran. Every shard runs, an
/// empty one too: it ends COMPLETED at once with no test (a CI job whose shard is empty passes).
async fn shard_prompts(
    server: &Server,
    filter: Option<pb::TestFilter>,
    index: u32,
    count: u32,
) -> Vec<String> {
    let request = pb::ExecuteRequest {
        filter,
        shard: Some(pb::Shard { index, count }),
        ..execute_request("catalogued", "echo")
    };
    let stream = server.execution().execute(request).await.unwrap();
    let events = crate::fixtures::collect(stream.into_inner()).await;
    let (run, results, summary) = crate::fixtures::split(events);
    assert_eq!(
        summary.total as usize,
        results.len(),
        "shard {index}/{count}"
    );
    assert_eq!(
        summary.status(),
        pb::RunStatus::Completed,
        "shard {index}/{count}"
    );
    let stored = crate::fixtures::get_run(server, &run.id).await;
    assert_eq!(stored.status(), pb::RunStatus::Completed);
    results.into_iter().map(|r| r.prompt).collect()
}

/// Every shard of `count` of a selection: each test in exactly one.
async fn assert_partition(
    server: &Server,
    filter: Option<pb::TestFilter>,
    count: u32,
    whole: &BTreeSet<String>,
) {
    let mut union = BTreeSet::new();
    for index in 0..count {
        for prompt in shard_prompts(server, filter.clone(), index, count).await {
            assert!(union.insert(prompt.clone()), "{prompt} ran in two shards");
        }
    }
    assert_eq!(&union, whole);
}

#[tokio::test]
async fn the_shards_of_a_selection_partition_it() {
    let server = Server::start().await;
    let target = Target::start().await;
    let tests = catalogued_set(&server, &target).await;
    assert_partition(&server, None, 3, &prompts(&tests)).await;
    // More shards than tests: some shards are empty, and they pass with no test.
    let many = tests.len() as u32 * 3;
    assert_partition(&server, None, many, &prompts(&tests)).await;

    let filter = Some(pb::TestFilter {
        categories: vec!["geo".into(), "chat".into()],
        ..Default::default()
    });
    let selection = chosen(&server, filter.clone(), None).await;
    assert_eq!(selection.len(), 8);
    assert_partition(&server, filter, 2, &selection).await;

    // A test's shard depends on its id alone: asked again, a shard runs the same tests.
    let again = shard_prompts(&server, None, 1, 3).await;
    assert_eq!(again, shard_prompts(&server, None, 1, 3).await);

    let bad = server
        .execution()
        .execute(pb::ExecuteRequest {
            shard: Some(pb::Shard { index: 3, count: 3 }),
            ..execute_request("catalogued", "echo")
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("shard.index"), "{}", bad.message());
}

#[tokio::test]
async fn rescore_takes_the_same_filter() {
    let server = Server::start().await;
    let target = Target::start().await;
    let tests = catalogued_set(&server, &target).await;
    let source = execute(&server, execute_request("catalogued", "echo"))
        .await
        .2;
    let filter = pb::TestFilter {
        topics: vec!["asia".into()],
        ..Default::default()
    };
    let (run, results, _) = rescore(
        &server,
        pb::RescoreRequest {
            test_set: "catalogued".into(),
            endpoint: "echo".into(),
            run: source.run_id.clone(),
            filter: Some(filter),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(run.total, 6);
    let rescored: BTreeSet<String> = results.into_iter().map(|r| r.prompt).collect();
    assert_eq!(
        rescored,
        prompts(tests.iter().filter(|t| t.topic == "asia"))
    );
    let calls = target.calls();
    assert_eq!(calls, 12, "a rescore never calls the endpoint");
}
