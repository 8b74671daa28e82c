//! The metric library through gRPC: create-time validation of every kind, deterministic kinds
//! scoring real answers, and LLM judges that are real OpenAI-compatible servers on 127.0.0.1
//! (the test target's `/scripted` judge), named as endpoints or configured as the server default.

use assay::proto::v1 as pb;
use pb::metric::Kind;
use tonic::Code;

use crate::app_server::Target;
use crate::fixtures::*;
use crate::harness::Server;

fn metric(name: &str, kind: Kind) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        kind: Some(kind),
        ..Default::default()
    }
}

fn similarity(value: Option<&str>) -> pb::Similarity {
    pb::Similarity {
        value: value.map(str::to_string),
        ..Default::default()
    }
}

/// A numeric judge metric (scale 1..5) judged by `endpoint`.
fn judge_metric(name: &str, endpoint: &str) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        threshold: Some(0.5),
        kind: Some(Kind::LlmJudge(pb::LlmJudge {
            judge_endpoint: endpoint.into(),
            evaluation_prompt: "Is the answer about the right city?".into(),
            evaluation_steps: vec!["Find the city.".into(), "Compare it.".into()],
            min_score: 1.0,
            max_score: 5.0,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// An OpenAI-chat endpoint on the test target's scripted judge: one attempt, 300 ms timeout.
fn judge_endpoint(name: &str, target: &Target, max_concurrency: u32) -> pb::Endpoint {
    pb::Endpoint {
        name: name.into(),
        target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
            base_url: format!("{}/scripted/v1", target.url),
            model: "judge-model".into(),
            timeout_ms: 300,
            ..Default::default()
        })),
        max_concurrency,
        ..Default::default()
    }
}

async fn create_error(server: &Server, metric: pb::Metric) -> tonic::Status {
    server
        .metrics()
        .create_metric(pb::CreateMetricRequest {
            metric: Some(metric),
        })
        .await
        .expect_err("the metric was created")
}

#[tokio::test]
async fn bad_settings_are_rejected_at_create_naming_the_field_and_value() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let schema = |text: &str| {
        Kind::JsonSchema(pb::JsonSchema {
            schema: text.into(),
        })
    };
    let length = |min, max| Kind::Length(pb::Length { min, max, unit: 0 });
    let judge = |judge: pb::LlmJudge| Kind::LlmJudge(judge);
    let cases: Vec<(pb::Metric, Code, &str, &str)> = vec![
        (
            regex("r", "(unclosed"),
            Code::InvalidArgument,
            "metric.regex.pattern",
            "(unclosed",
        ),
        (
            metric("s1", schema("{not json")),
            Code::InvalidArgument,
            "metric.json_schema.schema",
            "is not JSON",
        ),
        (
            metric("s2", schema(r#"{"type": "nonsense"}"#)),
            Code::InvalidArgument,
            "metric.json_schema.schema",
            "nonsense",
        ),
        (
            metric("l1", length(Some(10), Some(2))),
            Code::InvalidArgument,
            "metric.length.min",
            "min 10 is greater than max 2",
        ),
        (
            metric("l2", length(None, None)),
            Code::InvalidArgument,
            "metric.length",
            "at least one of min and max",
        ),
        (
            metric(
                "l3",
                Kind::Length(pb::Length {
                    min: Some(1),
                    max: None,
                    unit: 9,
                }),
            ),
            Code::InvalidArgument,
            "metric.length.unit",
            "9",
        ),
        (
            metric("lat", Kind::Latency(pb::Latency { max_ms: 0 })),
            Code::InvalidArgument,
            "metric.latency.max_ms",
            "greater than 0",
        ),
        (
            metric(
                "nc",
                Kind::NotContains(pb::NotContains {
                    values: vec!["ok".into(), String::new()],
                    case_sensitive: false,
                }),
            ),
            Code::InvalidArgument,
            "metric.not_contains.values",
            "no empty value",
        ),
        (
            pb::Metric {
                threshold_operator: ">=".into(),
                score_type: pb::ScoreType::Binary as i32,
                ..metric("bin", Kind::IsJson(pb::IsJson {}))
            },
            Code::InvalidArgument,
            "metric.threshold_operator",
            "\">=\"",
        ),
        (
            pb::Metric {
                threshold_operator: "<".into(),
                score_type: pb::ScoreType::Categorical as i32,
                categories: vec!["good".into()],
                passing_categories: vec!["good".into()],
                ..metric(
                    "cat",
                    judge(pb::LlmJudge {
                        base_url: "http://127.0.0.1:9/v1".into(),
                        model: "m".into(),
                        ..Default::default()
                    }),
                )
            },
            Code::InvalidArgument,
            "metric.threshold_operator",
            "\"<\"",
        ),
        (
            judge_metric("j1", "no-such-endpoint"),
            Code::NotFound,
            "endpoint",
            "no-such-endpoint",
        ),
        (
            judge_metric("j2", "app"),
            Code::InvalidArgument,
            "metric.llm_judge.judge_endpoint",
            "\"app\" is not of the openai_chat kind",
        ),
        (
            metric("j3", judge(pb::LlmJudge::default())),
            Code::InvalidArgument,
            "metric.llm_judge.judge_endpoint",
            "no default judge",
        ),
        (
            metric(
                "j4",
                judge(pb::LlmJudge {
                    model: "m".into(),
                    ..Default::default()
                }),
            ),
            Code::InvalidArgument,
            "metric.llm_judge.base_url",
            "is required when model is given",
        ),
        (
            metric(
                "j5",
                judge(pb::LlmJudge {
                    base_url: "http://127.0.0.1:9/v1".into(),
                    model: "m".into(),
                    min_score: 5.0,
                    max_score: 1.0,
                    ..Default::default()
                }),
            ),
            Code::InvalidArgument,
            "metric.llm_judge.max_score",
            "5 >= 1",
        ),
        (
            metric(
                "j6",
                judge(pb::LlmJudge {
                    base_url: "http://127.0.0.1:9/v1".into(),
                    model: "m".into(),
                    evaluation_steps: vec!["one".into(), " ".into()],
                    ..Default::default()
                }),
            ),
            Code::InvalidArgument,
            "metric.llm_judge.evaluation_steps[1]",
            "is empty",
        ),
        (
            metric(
                "b1",
                Kind::Bleu(pb::Similarity {
                    tokenize: "moses".into(),
                    ..Default::default()
                }),
            ),
            Code::InvalidArgument,
            "metric.bleu.tokenize",
            "\"moses\" is not one of 13a, intl, char, none",
        ),
        (
            metric(
                "b2",
                Kind::Bleu(pb::Similarity {
                    ignore_case: true,
                    ..Default::default()
                }),
            ),
            Code::InvalidArgument,
            "metric.bleu.ignore_case",
            "is an option of levenshtein, not of bleu",
        ),
        (
            metric(
                "r1",
                Kind::RougeL(pb::Similarity {
                    nfc: true,
                    ..Default::default()
                }),
            ),
            Code::InvalidArgument,
            "metric.rouge_l.nfc",
            "is an option of levenshtein, not of rouge_l",
        ),
        (
            metric(
                "v1",
                Kind::Levenshtein(pb::Similarity {
                    tokenize: "char".into(),
                    ..Default::default()
                }),
            ),
            Code::InvalidArgument,
            "metric.levenshtein.tokenize",
            "is an option of bleu, not of levenshtein",
        ),
    ];
    for (metric, code, field, value) in cases {
        let name = metric.name.clone();
        let status = create_error(&server, metric).await;
        assert_eq!(status.code(), code, "{name}: {status:?}");
        assert!(
            status.message().contains(field) && status.message().contains(value),
            "{name}: {:?} should name {field} and {value}",
            status.message()
        );
    }
    let listed = server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.metrics.is_empty(), "a bad metric was stored");
}

#[tokio::test]
async fn every_kind_round_trips_and_a_judge_endpoint_is_returned_as_its_id() {
    let server = Server::start().await;
    let target = Target::start().await;
    let judge = create_endpoint(&server, judge_endpoint("judge", &target, 0)).await;
    let kinds = vec![
        Kind::NotContains(pb::NotContains {
            values: vec!["sorry".into()],
            case_sensitive: true,
        }),
        Kind::Regex(pb::Regex {
            pattern: r"\d".into(),
            no_match: true,
        }),
        Kind::StartsWith(pb::AffixMatch {
            value: Some("Answer:".into()),
            ignore_case: true,
            trim: true,
        }),
        Kind::EndsWith(pb::AffixMatch::default()),
        Kind::IsJson(pb::IsJson {}),
        Kind::JsonSchema(pb::JsonSchema {
            schema: r#"{"type": "object"}"#.into(),
        }),
        Kind::Length(pb::Length {
            min: Some(1),
            max: Some(280),
            unit: pb::LengthUnit::Words as i32,
        }),
        Kind::Latency(pb::Latency { max_ms: 1500 }),
        Kind::Levenshtein(similarity(Some("Paris"))),
        Kind::Levenshtein(pb::Similarity {
            ignore_case: true,
            nfc: true,
            ..similarity(None)
        }),
        Kind::RougeL(similarity(None)),
        Kind::Bleu(pb::Similarity {
            tokenize: "13a".into(),
            ..similarity(None)
        }),
        Kind::Bleu(pb::Similarity {
            lowercase: true,
            tokenize: "intl".into(),
            ..similarity(Some("Paris"))
        }),
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let created = create_metric(&server, metric(&format!("k{i}"), kind.clone())).await;
        let got = server
            .metrics()
            .get_metric(pb::GetMetricRequest {
                metric: created.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.kind, Some(kind.clone()));
        let similar = matches!(kind, Kind::Levenshtein(_) | Kind::RougeL(_) | Kind::Bleu(_));
        let natural = if similar {
            pb::ScoreType::Numeric
        } else {
            pb::ScoreType::Binary
        };
        assert_eq!(got.score_type, natural as i32, "{kind:?}");
    }
    // BLEU shows the tokenizer in force, also when none was given.
    let bleu = create_metric(&server, metric("bleu", Kind::Bleu(similarity(None)))).await;
    let Some(Kind::Bleu(settings)) = bleu.kind else {
        panic!("not BLEU")
    };
    assert_eq!(settings.tokenize, "13a");
    let judged = create_metric(&server, judge_metric("judged", "judge")).await;
    let Some(Kind::LlmJudge(settings)) = judged.kind else {
        panic!("not a judge")
    };
    assert_eq!(settings.judge_endpoint, judge.id);
    assert_eq!(settings.evaluation_steps, ["Find the city.", "Compare it."]);
}

#[tokio::test]
async fn deterministic_kinds_score_real_answers() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let metrics = [
        metric(
            "schema",
            Kind::JsonSchema(pb::JsonSchema {
                schema: r#"{"type": "object", "required": ["city"]}"#.into(),
            }),
        ),
        metric("fast", Kind::Latency(pb::Latency { max_ms: 60_000 })),
        metric("rouge", Kind::RougeL(similarity(None))),
        metric(
            "polite",
            Kind::NotContains(pb::NotContains {
                values: vec!["stupid".into()],
                case_sensitive: false,
            }),
        ),
    ];
    for m in metrics {
        create_metric(&server, m).await;
    }
    let tests = vec![
        test(
            "q1",
            r#"{"city": "Paris"}"#,
            &[("answer", r#"{"city": "Paris"}"#)],
        ),
        test("q2", "Rome", &[("answer", "that is a stupid question")]),
        test("q3", "", &[("answer", r#"{"city": "Oslo"}"#)]),
    ];
    create_test_set(
        &server,
        "det",
        &["schema", "fast", "rouge", "polite"],
        tests,
    )
    .await;

    let (run, results, _) = execute(&server, execute_request("det", "app")).await;
    let by_output = |output: &str| {
        results
            .iter()
            .find(|r| r.output == output)
            .unwrap_or_else(|| panic!("no result with output {output:?}"))
    };
    let verdict = |r: &pb::TestResult, name: &str| {
        let m = r.metric_results.iter().find(|m| m.metric_name == name);
        let m = m.unwrap_or_else(|| panic!("no result of metric {name}"));
        (m.passed, m.score, m.error.clone())
    };
    let paris = by_output(r#"{"city": "Paris"}"#);
    assert_eq!(paris.status, pb::ResultStatus::Passed as i32);
    assert_eq!(verdict(paris, "rouge"), (true, Some(1.0), String::new()));
    assert!(verdict(paris, "fast").0);

    let rude = by_output("that is a stupid question");
    assert_eq!(rude.status, pb::ResultStatus::Failed as i32);
    assert!(!verdict(rude, "schema").0);
    assert_eq!(verdict(rude, "polite"), (false, Some(0.0), String::new()));
    assert_eq!(verdict(rude, "rouge"), (false, Some(0.0), String::new()));

    // No expected response: the similarity metric errors, the other metrics still score.
    let oslo = by_output(r#"{"city": "Oslo"}"#);
    let (passed, score, error) = verdict(oslo, "rouge");
    assert_eq!((passed, score), (false, None));
    assert!(error.contains("needs an expected response"), "{error}");
    assert!(verdict(oslo, "schema").0);
    assert!(verdict(oslo, "polite").0);
    assert_eq!(oslo.status, pb::ResultStatus::Failed as i32);

    // What was streamed is what was stored, metric durations included.
    let mut stored = stored_results(&server, &run.id).await;
    let mut streamed = results.clone();
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    streamed.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(stored, streamed);
}

#[tokio::test]
async fn similarity_scores_are_those_of_the_reference_libraries_with_every_option() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let metrics = [
        ("bleu", Kind::Bleu(similarity(None))),
        (
            "bleu-lowercase",
            Kind::Bleu(pb::Similarity {
                lowercase: true,
                ..similarity(None)
            }),
        ),
        (
            "bleu-char",
            Kind::Bleu(pb::Similarity {
                tokenize: "char".into(),
                ..similarity(None)
            }),
        ),
        (
            "bleu-intl",
            Kind::Bleu(pb::Similarity {
                tokenize: "intl".into(),
                ..similarity(None)
            }),
        ),
        ("rouge", Kind::RougeL(similarity(None))),
        ("levenshtein", Kind::Levenshtein(similarity(None))),
        (
            "levenshtein-folded",
            Kind::Levenshtein(pb::Similarity {
                ignore_case: true,
                nfc: true,
                ..similarity(None)
            }),
        ),
    ];
    let names: Vec<&str> = metrics.iter().map(|(name, _)| *name).collect();
    for (name, kind) in metrics {
        create_metric(&server, metric(name, kind)).await;
    }
    let nfd = "Cre\u{300}me bru\u{302}le\u{301}e";
    let tests = vec![
        test(
            "q1",
            "The answer is 42.0",
            &[("answer", "The answer is 42.")],
        ),
        test(
            "q2",
            "the cat sat on the mat",
            &[("answer", "THE CAT SAT ON THE MAT")],
        ),
        test("q3", "🇯🇵🇯🇵", &[("answer", "🇯🇵")]),
        test("q4", "❤", &[("answer", "❤\u{fe0f}")]),
        test("q5", "🇯🇵", &[("answer", "🇯🇵")]),
        test("q6", "Crème brûlée", &[("answer", nfd)]),
        test(
            "q7",
            "Москва столица России",
            &[("answer", "Москва — столица России.")],
        ),
        // An empty expected response is a reference like any other.
        pb::Test {
            expected_response: Some(String::new()),
            ..test("q8", "", &[("answer", "x")])
        },
    ];
    create_test_set(&server, "similar", &names, tests).await;
    let (_, results, _) = execute(&server, execute_request("similar", "app")).await;
    let score = |prompt: &str, metric: &str| {
        let result = results.iter().find(|r| r.prompt == prompt).unwrap();
        let m = result
            .metric_results
            .iter()
            .find(|m| m.metric_name == metric);
        let m = m.unwrap_or_else(|| panic!("no {metric} result for {prompt}"));
        assert!(m.error.is_empty(), "{prompt} {metric}: {}", m.error);
        m.score.expect("a score")
    };
    // Computed with sacrebleu 2.6.0 (sentence_bleu(...).score / 100) and rapidfuzz 3.14.6.
    let cases = [
        ("q1", "bleu", 0.39763536438352515),
        ("q1", "bleu-char", 0.9310627797040233),
        ("q2", "bleu", 0.0),
        ("q2", "bleu-lowercase", 1.0),
        ("q2", "levenshtein-folded", 1.0),
        ("q3", "rouge", 0.0),
        ("q4", "rouge", 0.0),
        ("q5", "rouge", 1.0),
        ("q6", "rouge", 1.0),
        ("q6", "levenshtein", 0.6),
        ("q6", "levenshtein-folded", 1.0),
        ("q7", "bleu-intl", 0.23643540225079385),
        ("q8", "levenshtein", 0.0),
        ("q8", "rouge", 0.0),
    ];
    for (prompt, metric, want) in cases {
        let got = score(prompt, metric);
        assert!(
            (got - want).abs() < 1e-9,
            "{prompt} {metric}: {got}, reference {want}"
        );
    }
    assert!(score("q2", "levenshtein") < 0.5, "case counts by default");
}

/// The metric result of `name` in the result whose output contains `marker`.
fn judged<'a>(results: &'a [pb::TestResult], marker: &str, name: &str) -> &'a pb::MetricResult {
    let result = results
        .iter()
        .find(|r| r.output.contains(marker))
        .unwrap_or_else(|| panic!("no result for {marker}"));
    result
        .metric_results
        .iter()
        .find(|m| m.metric_name == name)
        .unwrap_or_else(|| panic!("no {name} result for {marker}"))
}

#[tokio::test]
async fn judge_replies_are_parsed_or_become_errors_that_keep_the_raw_reply() {
    let server = Server::start().await;
    let app = Target::start().await;
    let judge = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &app.url)).await;
    create_endpoint(&server, judge_endpoint("judge", &judge, 0)).await;
    create_metric(&server, judge_metric("city", "judge")).await;
    create_metric(&server, contains("any-letter", &["e", "a"])).await;
    let answer = |marker: &str| format!("The answer is here [judge:{marker}]");
    let markers = [
        "valid",
        "fenced",
        "malformed",
        "out_of_range",
        "slow",
        "fail",
    ];
    let tests = markers
        .iter()
        .map(|m| {
            test(
                &format!("Which city? ({m})"),
                "Paris",
                &[("answer", &answer(m)), ("context", "Paris is in France.")],
            )
        })
        .collect();
    create_test_set(&server, "judged", &["city", "any-letter"], tests).await;

    let (_, results, summary) = execute(&server, execute_request("judged", "app")).await;
    let valid = judged(&results, "[judge:valid]", "city");
    assert_eq!(
        (valid.score, valid.passed, valid.reason.as_str()),
        (Some(0.75), true, "mostly right")
    );
    let fenced = judged(&results, "[judge:fenced]", "city");
    assert_eq!((fenced.score, fenced.passed), (Some(1.0), true));
    for (marker, wanted) in [
        (
            "malformed",
            "judge reply is not a JSON object; raw reply: I would rather not say.",
        ),
        (
            "out_of_range",
            r#"judge score 11 is outside [1, 5]; raw reply: {"score": 11, "reason": "beyond great"}"#,
        ),
        ("slow", "timed out after 300 ms"),
        ("fail", "returned HTTP 500: judge overloaded"),
    ] {
        let m = judged(&results, &format!("[judge:{marker}]"), "city");
        assert!(m.error.contains(wanted), "{marker}: {:?}", m.error);
        assert_eq!((m.passed, m.score), (false, None), "{marker}");
        // The other metric of the same test was still evaluated.
        let other = judged(&results, &format!("[judge:{marker}]"), "any-letter");
        assert!(
            other.passed && other.error.is_empty(),
            "{marker}: {other:?}"
        );
    }
    // The time a metric took is kept: a judge that timed out took at least its timeout.
    assert!(judged(&results, "[judge:slow]", "city").duration_ms >= 300);
    let stats = summary.metrics.iter().find(|m| m.metric_name == "city");
    assert_eq!(stats.map(|s| (s.evaluated, s.errored)), Some((2, 4)));

    // The judge saw the test's prompt, expected response, context and the output, with the
    // evaluation prompt and steps; the endpoint's model is sent.
    let bodies = judge.bodies();
    assert_eq!(bodies.len(), markers.len());
    let valid_call = bodies
        .iter()
        .find(|b| b.to_string().contains("[judge:valid]"))
        .unwrap();
    assert_eq!(valid_call["model"], "judge-model");
    let user = valid_call["messages"][1]["content"].as_str().unwrap();
    for part in [
        "Is the answer about the right city?",
        "Evaluation steps:\n1. Find the city.\n2. Compare it.",
        "Which city? (valid)",
        "Expected answer:\nParis",
        "- Paris is in France.",
        "Answer to evaluate:\nThe answer is here [judge:valid]",
    ] {
        assert!(user.contains(part), "{part:?} missing in {user}");
    }
    let system = valid_call["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("from 1 (worst) to 5 (best)"), "{system}");
}

#[tokio::test]
async fn a_categorical_judge_passes_on_passing_categories_and_rejects_unknown_ones() {
    let server = Server::start().await;
    let app = Target::start().await;
    let judge = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &app.url)).await;
    let endpoint = create_endpoint(&server, judge_endpoint("judge", &judge, 0)).await;
    create_metric(
        &server,
        pb::Metric {
            score_type: pb::ScoreType::Categorical as i32,
            categories: vec!["good".into(), "bad".into()],
            passing_categories: vec!["good".into()],
            // Named by id this time.
            ..judge_metric("tone", &endpoint.id)
        },
    )
    .await;
    let tests = vec![
        test("a", "", &[("answer", "[judge:good]")]),
        test("b", "", &[("answer", "[judge:purple]")]),
    ];
    create_test_set(&server, "tones", &["tone"], tests).await;

    let (_, results, _) = execute(&server, execute_request("tones", "app")).await;
    let good = judged(&results, "[judge:good]", "tone");
    assert_eq!((good.category.as_str(), good.passed), ("good", true));
    let purple = judged(&results, "[judge:purple]", "tone");
    assert!(!purple.passed);
    assert!(
        purple
            .error
            .contains(r#"judge answered category "purple", which is not one of ["good", "bad"]"#)
            && purple.error.contains(r#"raw reply: {"category": "purple""#),
        "{}",
        purple.error
    );
    let system = judge.bodies()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        system.contains(r#"exactly one of: "good", "bad""#),
        "{system}"
    );
}

#[tokio::test]
async fn judge_calls_keep_to_the_judge_endpoints_concurrency_limit() {
    let server = Server::start().await;
    let app = Target::start().await;
    let judge = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &app.url)).await;
    create_endpoint(&server, judge_endpoint("judge", &judge, 2)).await;
    create_metric(&server, judge_metric("city", "judge")).await;
    let tests = (0..12)
        .map(|i| test(&format!("q{i}"), "", &[("answer", "[judge:busy]")]))
        .collect();
    create_test_set(&server, "many", &["city"], tests).await;

    let (_, results, _) = execute(&server, execute_request("many", "app")).await;
    assert!(
        results
            .iter()
            .all(|r| r.status == pb::ResultStatus::Passed as i32)
    );
    assert_eq!(judge.calls(), 12);
    assert!(
        judge.max_in_flight() <= 2,
        "{} judge calls at once",
        judge.max_in_flight()
    );
}

#[tokio::test]
async fn rescore_with_a_new_judge_metric_scores_the_stored_outputs() {
    let server = Server::start().await;
    let app = Target::start().await;
    let judge = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &app.url)).await;
    create_endpoint(&server, judge_endpoint("judge", &judge, 0)).await;
    create_metric(&server, contains("any-letter", &["e", "a"])).await;
    let tests = vec![
        test("a", "x", &[("answer", "first [judge:valid]")]),
        test("b", "y", &[("answer", "second [judge:fenced]")]),
    ];
    create_test_set(&server, "later", &["any-letter"], tests).await;
    let (source, _, _) = execute(&server, execute_request("later", "app")).await;
    assert_eq!((app.calls(), judge.calls()), (2, 0));

    // The judge metric is created after the run.
    create_metric(&server, judge_metric("city", "judge")).await;
    let (run, results, summary) = rescore(
        &server,
        pb::RescoreRequest {
            test_set: "later".into(),
            endpoint: "app".into(),
            run: source.id.clone(),
            metrics: vec!["city".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(app.calls(), 2, "rescore called the endpoint");
    assert_eq!(judge.calls(), 2);
    assert_eq!(run.source_run_id, source.id);
    assert_eq!(judged(&results, "first", "city").score, Some(0.75));
    assert_eq!(judged(&results, "second", "city").score, Some(1.0));
    assert_eq!(summary.passed, 2);
    let user = judge.bodies()[0]["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user.contains("Answer to evaluate:\n"), "{user}");
}

#[tokio::test]
async fn rescore_takes_mode_and_max_concurrency_as_execute_does() {
    let server = Server::start().await;
    let app = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &app.url)).await;
    create_metric(&server, regex("anything", ".")).await;
    // Judges without limits of their own: the rescore's concurrency is what holds their calls.
    let (sequential_judge, parallel_judge) = (Target::start().await, Target::start().await);
    for (name, judge) in [("one", &sequential_judge), ("three", &parallel_judge)] {
        create_endpoint(&server, judge_endpoint(name, judge, 0)).await;
        create_metric(&server, judge_metric(name, name)).await;
    }
    let prompts: Vec<String> = (0..8).map(|i| format!("q{i}")).collect();
    let tests = prompts
        .iter()
        .map(|p| test(p, "", &[("answer", &format!("{p} [judge:busy]"))]))
        .collect();
    create_test_set(&server, "many", &["anything"], tests).await;
    let (source, _, _) = execute(&server, execute_request("many", "app")).await;
    let request = |metric: &str, mode: pb::ExecutionMode, max_concurrency| pb::RescoreRequest {
        test_set: "many".into(),
        endpoint: "app".into(),
        run: source.id.clone(),
        metrics: vec![metric.into()],
        mode: mode as i32,
        max_concurrency,
        ..Default::default()
    };

    let (run, results, _) =
        rescore(&server, request("one", pb::ExecutionMode::Sequential, 0)).await;
    assert_eq!(run.mode, pb::ExecutionMode::Sequential as i32);
    assert_eq!(run.max_concurrency, 1);
    assert_eq!(sequential_judge.calls(), 8);
    assert_eq!(sequential_judge.max_in_flight(), 1);
    let streamed: Vec<&str> = results.iter().map(|r| r.prompt.as_str()).collect();
    assert_eq!(streamed, prompts, "one output at a time, in test order");

    let (run, _, _) = rescore(&server, request("three", pb::ExecutionMode::Parallel, 3)).await;
    assert_eq!(run.mode, pb::ExecutionMode::Parallel as i32);
    assert_eq!(run.max_concurrency, 3);
    assert_eq!(parallel_judge.calls(), 8);
    assert!(
        parallel_judge.max_in_flight() <= 3,
        "{} judge calls at once",
        parallel_judge.max_in_flight()
    );
    assert_eq!(app.calls(), 8, "rescore called the endpoint");

    let status = server
        .execution()
        .rescore(pb::RescoreRequest {
            mode: 7,
            ..request("one", pb::ExecutionMode::Parallel, 0)
        })
        .await
        .expect_err("an unknown mode");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("mode"), "{}", status.message());
}

#[tokio::test]
async fn the_server_default_judge_scores_metrics_that_name_no_judge() {
    let judge = Target::start().await;
    let base_url = format!("{}/scripted/v1", judge.url);
    let server = Server::start_with(|config| {
        config.judge_base_url = Some(base_url);
        config.judge_model = Some("default-judge-model".into());
        config.judge_max_concurrency = 1;
    })
    .await;
    let app = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &app.url)).await;
    // Neither an endpoint nor an inline model: the default judge.
    create_metric(
        &server,
        pb::Metric {
            threshold: Some(0.5),
            ..metric(
                "default",
                Kind::LlmJudge(pb::LlmJudge {
                    min_score: 1.0,
                    max_score: 5.0,
                    ..Default::default()
                }),
            )
        },
    )
    .await;
    let tests = (0..4)
        .map(|i| test(&format!("q{i}"), "", &[("answer", "[judge:busy]")]))
        .collect();
    create_test_set(&server, "defaulted", &["default"], tests).await;

    let (_, results, _) = execute(&server, execute_request("defaulted", "app")).await;
    assert!(
        results
            .iter()
            .all(|r| r.metric_results[0].score == Some(0.75)),
        "{results:?}"
    );
    let bodies = judge.bodies();
    assert_eq!(bodies.len(), 4);
    assert!(bodies.iter().all(|b| b["model"] == "default-judge-model"));
    assert_eq!(judge.max_in_flight(), 1);

    // Restarted without a default judge: the metric's results are errors, the run still ends.
    let (db_path, _dir) = server.stop().await;
    let server = Server::start_on(&db_path).await;
    let (_, results, summary) = execute(&server, execute_request("defaulted", "app")).await;
    for r in &results {
        assert_eq!(r.status, pb::ResultStatus::Error as i32);
        let error = &r.metric_results[0].error;
        assert!(error.contains("the server has no default judge"), "{error}");
    }
    assert_eq!(summary.status, pb::RunStatus::Failed as i32);
    assert_eq!(judge.calls(), 4);
}
