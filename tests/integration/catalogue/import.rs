//! `ImportTests`: a test set and its tests, received in pieces, stored all or nothing.

use std::net::Shutdown;
use std::sync::{Arc, Mutex};

use assay::proto::v1 as pb;
use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tower::service_fn;

use crate::fixtures::{create_metric, create_test_set, exact, stored_tests, test};
use crate::harness::Server;

/// `count` tests named `p{first}`, `p{first + 1}`, ...
fn tests(first: usize, count: usize) -> Vec<pb::Test> {
    (first..first + count)
        .map(|i| test(&format!("p{i}"), "", &[]))
        .collect()
}

fn piece(tests: Vec<pb::Test>) -> pb::ImportTestsRequest {
    pb::ImportTestsRequest {
        tests,
        ..Default::default()
    }
}

fn new_set(name: &str, metrics: &[&str]) -> pb::ImportTestsRequest {
    pb::ImportTestsRequest {
        new_test_set: Some(pb::TestSet {
            name: name.into(),
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn into_set(name: &str) -> pb::ImportTestsRequest {
    pb::ImportTestsRequest {
        test_set: name.into(),
        ..Default::default()
    }
}

async fn import(
    server: &Server,
    messages: Vec<pb::ImportTestsRequest>,
) -> Result<pb::ImportTestsResponse, tonic::Status> {
    server
        .test_sets()
        .import_tests(futures::stream::iter(messages))
        .await
        .map(|r| r.into_inner())
}

/// Every prompt of a test set, in test-set order.
async fn prompts(server: &Server, test_set: &str) -> Vec<String> {
    let tests = stored_tests(server, test_set).await;
    tests.into_iter().map(|t| t.prompt).collect()
}

async fn test_set_exists(server: &Server, name: &str) -> bool {
    match server
        .test_sets()
        .get_test_set(pb::GetTestSetRequest {
            test_set: name.into(),
        })
        .await
    {
        Ok(_) => true,
        Err(status) if status.code() == Code::NotFound => false,
        Err(status) => panic!("get test set: {status:?}"),
    }
}

#[tokio::test]
async fn an_import_creates_the_test_set_with_every_piece_in_order() {
    let server = Server::start().await;
    create_metric(&server, exact("exact")).await;
    let mut first = new_set("imported", &["exact"]);
    first.tests = tests(0, 2);
    let messages = vec![
        first,
        piece(tests(2, 1500)),
        piece(vec![]),
        piece(tests(1502, 3)),
    ];

    let imported = import(&server, messages).await.expect("import");

    assert_eq!(imported.imported_count, 1505);
    let set = imported.test_set.expect("test set");
    assert_eq!((set.name.as_str(), set.test_count), ("imported", 1505));
    assert_eq!(set.metrics.len(), 1);
    let expected: Vec<String> = (0..1505).map(|i| format!("p{i}")).collect();
    assert_eq!(prompts(&server, "imported").await, expected);
}

#[tokio::test]
async fn a_bad_test_in_the_last_piece_imports_nothing_not_even_the_new_test_set() {
    let server = Server::start().await;
    let mut last = tests(1200, 10);
    last[7].prompt = "  ".into();
    let messages = vec![new_set("doomed", &[]), piece(tests(0, 1200)), piece(last)];

    let status = import(&server, messages).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("tests[1207].prompt"),
        "the error names the test by its place in the whole import: {}",
        status.message()
    );
    assert!(!test_set_exists(&server, "doomed").await);
}

#[tokio::test]
async fn an_import_into_an_existing_test_set_appends_or_changes_nothing() {
    let server = Server::start().await;
    create_test_set(&server, "existing", &[], tests(0, 2)).await;
    let mut bad = tests(502, 5);
    bad[3].behavior = "no-such-behavior".into();
    let messages = vec![into_set("existing"), piece(tests(2, 500)), piece(bad)];

    let status = import(&server, messages).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("no-such-behavior"), "{status:?}");
    assert_eq!(prompts(&server, "existing").await, ["p0", "p1"]);

    let messages = vec![into_set("existing"), piece(tests(2, 500))];
    let imported = import(&server, messages).await.expect("import");
    assert_eq!(imported.imported_count, 500);
    assert_eq!(imported.test_set.expect("test set").test_count, 502);
    assert_eq!(prompts(&server, "existing").await.len(), 502);
}

#[tokio::test]
async fn the_first_message_names_the_test_set_and_only_the_first() {
    let server = Server::start().await;
    create_test_set(&server, "s", &[], vec![]).await;
    let cases = [
        (vec![piece(tests(0, 1))], "test_set"),
        (
            vec![
                pb::ImportTestsRequest {
                    new_test_set: Some(pb::TestSet {
                        name: "t".into(),
                        ..Default::default()
                    }),
                    ..into_set("s")
                },
                piece(tests(0, 1)),
            ],
            "new_test_set",
        ),
        (
            vec![into_set("s"), piece(tests(0, 1)), into_set("s")],
            "only the first message",
        ),
        (vec![into_set("s")], "give at least one test"),
        (
            vec![new_set("", &[]), piece(tests(0, 1))],
            "new_test_set.name",
        ),
    ];
    for (messages, said) in cases {
        let status = import(&server, messages).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{said}: {status:?}");
        assert!(
            status.message().contains(said),
            "{said}: {}",
            status.message()
        );
    }
    assert!(prompts(&server, "s").await.is_empty());
    assert!(!test_set_exists(&server, "t").await);
}

/// A channel on a TCP connection of its own, and that connection's socket: shutting the socket
/// down cuts the connection as a client that dies or loses its network does.
async fn cuttable_channel(server: &Server) -> (Channel, std::net::TcpStream) {
    let socket = Arc::new(Mutex::new(None));
    let kept = Arc::clone(&socket);
    let addr = server.url().trim_start_matches("http://").to_string();
    let channel = Endpoint::from_shared(server.url().to_string())
        .expect("uri")
        .connect_with_connector(service_fn(move |_: Uri| {
            let (addr, kept) = (addr.clone(), Arc::clone(&kept));
            async move {
                let stream = TcpStream::connect(addr).await?;
                let std_stream = stream.into_std()?;
                *kept.lock().unwrap() = Some(std_stream.try_clone()?);
                Ok::<_, std::io::Error>(TokioIo::new(TcpStream::from_std(std_stream)?))
            }
        }))
        .await
        .expect("connect");
    let socket = socket.lock().unwrap().take().expect("the connector ran");
    (channel, socket)
}

#[tokio::test]
async fn a_client_that_goes_away_mid_import_stores_nothing_and_frees_the_store() {
    let server = Server::start().await;
    let (channel, socket) = cuttable_channel(&server).await;
    let (tx, rx) = mpsc::channel(4);
    tx.send(new_set("abandoned", &[])).await.unwrap();
    tx.send(piece(tests(0, 100))).await.unwrap();
    let mut client = pb::test_set_service_client::TestSetServiceClient::new(channel);
    let call = tokio::spawn(async move { client.import_tests(ReceiverStream::new(rx)).await });
    // Both pieces are on their way once the client has taken them from the channel.
    while tx.capacity() < tx.max_capacity() {
        tokio::task::yield_now().await;
    }
    // The connection is cut while the stream is still open (the sender is alive): the server
    // never sees a clean end of the stream, which would commit.
    socket.shutdown(Shutdown::Both).expect("shutdown");
    let outcome = call.await.expect("the call task");
    assert!(outcome.is_err(), "a cut call cannot succeed: {outcome:?}");
    drop(tx);

    // A write goes through once the import's transaction is gone: the store is not held.
    create_metric(&server, exact("after")).await;
    assert!(!test_set_exists(&server, "abandoned").await);
}
