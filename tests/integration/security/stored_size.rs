//! Stored texts are bounded (`--max-stored-output-bytes`), so that every stored test and result
//! can be read back through the read RPCs within gRPC's usual 4 MiB message limit.

use std::collections::HashMap;

use assay::proto::v1 as pb;
use pb::test_execution_service_client::TestExecutionServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use super::recorder::Recorder;
use crate::fixtures::{
    collect, contains, create_endpoint, create_metric, create_test_set, execute, execute_request,
    split, test,
};
use crate::harness::Server;

/// 1 MiB: the default and highest limit.
const MIB: usize = 1024 * 1024;

/// An HTTP endpoint `bot` whose answers have an output of `bytes` bytes.
async fn sized_endpoint(server: &Server, target: &Recorder, bytes: usize) {
    create_endpoint(
        server,
        pb::Endpoint {
            name: "bot".into(),
            target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
                url: format!("{}/sized?bytes={bytes}", target.url),
                headers: HashMap::new(),
                ..Default::default()
            })),
            ..Default::default()
        },
    )
    .await;
}

/// The generated client with its defaults (messages of at most 4 MiB), unlike the CLI's.
fn plain_client(server: &Server) -> TestExecutionServiceClient<Channel> {
    TestExecutionServiceClient::new(server.channel())
}

/// Every result of a run, page after page, through the plain client.
async fn all_results(server: &Server, run: &str) -> (Vec<pb::TestResult>, usize) {
    let (mut results, mut pages, mut page_token) = (Vec::new(), 0, String::new());
    loop {
        let page = plain_client(server)
            .list_test_results(pb::ListTestResultsRequest {
                run: run.into(),
                page_size: 1000,
                page_token,
            })
            .await
            .expect("a page of results fits in a message")
            .into_inner();
        results.extend(page.results);
        pages += 1;
        if page.next_page_token.is_empty() {
            return (results, pages);
        }
        page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn results_with_texts_at_the_limit_are_streamed_and_listed_within_the_message_limit() {
    let server = Server::start().await;
    let target = Recorder::start().await;
    sized_endpoint(&server, &target, MIB - 64).await;
    create_metric(&server, contains("has-x", &["x"])).await;
    create_test_set(&server, "big", &["has-x"], vec![]).await;
    // One call each: two tests of 2 MiB would pass the 4 MiB request limit.
    for i in 0..3 {
        let prompt = format!("{i}{}", "p".repeat(MIB - 1));
        let big = test(&prompt, &"e".repeat(MIB), &[]);
        server
            .test_sets()
            .add_tests(pb::AddTestsRequest {
                test_set: "big".into(),
                tests: vec![big],
            })
            .await
            .expect("a prompt and an expected response of 1 MiB each are taken");
    }
    let stream = plain_client(&server)
        .execute(execute_request("big", "bot"))
        .await
        .expect("execute")
        .into_inner();
    let (run, streamed, summary) = split(collect(stream).await);
    assert_eq!(streamed.len(), 3);
    assert_eq!(summary.passed, 3, "{:?}", streamed[0].error);
    let (listed, pages) = all_results(&server, &run.id).await;
    assert_eq!(listed.len(), 3);
    assert!(pages > 1, "3 MiB results cannot share a page");
    assert!(listed.iter().all(|r| r.output.len() == MIB - 64));
}

#[tokio::test]
async fn an_answer_over_the_limit_makes_the_result_an_error_naming_the_limit() {
    let server = Server::start_with(|config| config.max_stored_output_bytes = 64 * 1024).await;
    let target = Recorder::start().await;
    sized_endpoint(&server, &target, 100_000).await;
    create_metric(&server, contains("has-x", &["x"])).await;
    create_test_set(&server, "set", &["has-x"], vec![test("q", "", &[])]).await;
    let (run, streamed, summary) = execute(&server, execute_request("set", "bot")).await;
    let result = &streamed[0];
    assert_eq!(result.status, pb::ResultStatus::Error as i32, "{result:?}");
    assert!(result.output.is_empty(), "the answer is not stored");
    for needle in ["100000 bytes", "65536", "ASSAY_MAX_STORED_OUTPUT_BYTES"] {
        assert!(result.error.contains(needle), "{needle}: {}", result.error);
    }
    assert_eq!(summary.errored, 1);
    let (listed, _) = all_results(&server, &run.id).await;
    assert_eq!(listed[0].error, result.error);
}

#[tokio::test]
async fn a_prompt_or_expected_response_over_the_limit_is_refused_naming_field_and_limit() {
    let server = Server::start_with(|config| config.max_stored_output_bytes = 1024).await;
    create_test_set(&server, "set", &[], vec![]).await;
    let long = "x".repeat(1025);
    let refused = server
        .test_sets()
        .add_tests(pb::AddTestsRequest {
            test_set: "set".into(),
            tests: vec![test("fine", "", &[]), test(&long, "", &[])],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    for needle in [
        "tests[1].prompt",
        "1025 bytes",
        "1024",
        "ASSAY_MAX_STORED_OUTPUT_BYTES",
    ] {
        assert!(refused.message().contains(needle), "{needle}: {refused:?}");
    }

    let import = pb::ImportTestsRequest {
        test_set: "set".into(),
        tests: vec![test("fine", &long, &[])],
        ..Default::default()
    };
    let refused = server
        .test_sets()
        .import_tests(futures::stream::iter(vec![import]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("tests[0].expected_response")
            && refused.message().contains("--max-stored-output-bytes"),
        "{refused:?}"
    );
    let set = server
        .test_sets()
        .get_test_set(pb::GetTestSetRequest {
            test_set: "set".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(set.test_count, 0, "nothing was stored");
}
