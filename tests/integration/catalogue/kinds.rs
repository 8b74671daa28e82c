//! The kinds of catalogue resource, and their list RPCs, as values: the cases that every kind
//! shares are written once over a [`Resource`] or a [`Lister`] and made a test of each kind by
//! `for_each!`.

use assay::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::Status;

use crate::fixtures::{create_test_set, exact, test};
use crate::harness::Server;

use super::{
    bare_http, delete_behavior, delete_endpoint, delete_metric, delete_test_set, get_behavior,
    get_endpoint, get_metric, get_test_set, try_create_behavior, try_create_endpoint,
    try_create_metric, try_create_test_set, update_behavior, update_endpoint, update_metric,
    update_test_set,
};

/// The four kinds of catalogue resource.
#[derive(Clone, Copy, Debug)]
pub(super) enum Resource {
    Metric,
    Behavior,
    Endpoint,
    TestSet,
}

/// The id, name and description of a resource of any kind: what the shared cases read and write.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Record {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) description: String,
}

/// A `Record` from each resource message, and a message with only a record's fields set.
macro_rules! record_of {
    ($($message:ty),+) => {$(
        impl From<$message> for Record {
            fn from(m: $message) -> Record {
                Record { id: m.id, name: m.name, description: m.description }
            }
        }

        impl From<Record> for $message {
            fn from(r: Record) -> $message {
                Self { id: r.id, name: r.name, description: r.description, ..Default::default() }
            }
        }
    )+};
}

record_of!(pb::Metric, pb::Behavior, pb::Endpoint, pb::TestSet);

impl Resource {
    /// The request field that names one: `metric`, `behavior`, `endpoint` or `test_set`.
    pub(super) fn field(self) -> &'static str {
        match self {
            Resource::Metric => "metric",
            Resource::Behavior => "behavior",
            Resource::Endpoint => "endpoint",
            Resource::TestSet => "test_set",
        }
    }

    /// `Create<Kind>` of one named `name` with only what it requires, or, for `None`, a request
    /// without the resource.
    pub(super) async fn try_create(
        self,
        server: &Server,
        name: Option<&str>,
    ) -> Result<Record, Status> {
        let named = |name: &str| Record {
            name: name.into(),
            ..Default::default()
        };
        match self {
            Resource::Metric => try_create_metric(server, name.map(exact))
                .await
                .map(Record::from),
            Resource::Behavior => {
                let behavior = name.map(|name| named(name).into());
                try_create_behavior(server, behavior)
                    .await
                    .map(Record::from)
            }
            Resource::Endpoint => {
                let endpoint = name.map(|name| bare_http(name, "http://127.0.0.1:9/"));
                try_create_endpoint(server, endpoint)
                    .await
                    .map(Record::from)
            }
            Resource::TestSet => {
                let test_set = name.map(|name| named(name).into());
                try_create_test_set(server, test_set)
                    .await
                    .map(Record::from)
            }
        }
    }

    /// Creates one named `name`; returns its id.
    pub(super) async fn create(self, server: &Server, name: &str) -> String {
        let created = self.try_create(server, Some(name)).await;
        created
            .unwrap_or_else(|e| panic!("create {self:?} {name}: {e:?}"))
            .id
    }

    /// `Get<Kind>` of `reference` (an id or a name).
    pub(super) async fn get(self, server: &Server, reference: &str) -> Result<Record, Status> {
        match self {
            Resource::Metric => get_metric(server, reference).await.map(Record::from),
            Resource::Behavior => get_behavior(server, reference).await.map(Record::from),
            Resource::Endpoint => get_endpoint(server, reference).await.map(Record::from),
            Resource::TestSet => get_test_set(server, reference).await.map(Record::from),
        }
    }

    /// `Update<Kind>` with a message of only `record`'s fields.
    pub(super) async fn update(
        self,
        server: &Server,
        record: Record,
        mask: Option<FieldMask>,
    ) -> Result<Record, Status> {
        match self {
            Resource::Metric => update_metric(server, record.into(), mask)
                .await
                .map(Record::from),
            Resource::Behavior => {
                let updated = update_behavior(server, record.into(), mask).await;
                updated.map(Record::from)
            }
            Resource::Endpoint => {
                let updated = update_endpoint(server, record.into(), mask).await;
                updated.map(Record::from)
            }
            Resource::TestSet => {
                let updated = update_test_set(server, record.into(), mask).await;
                updated.map(Record::from)
            }
        }
    }

    /// `Delete<Kind>` of `reference` (an id or a name).
    pub(super) async fn delete(self, server: &Server, reference: &str) -> Result<(), Status> {
        match self {
            Resource::Metric => delete_metric(server, reference).await,
            Resource::Behavior => delete_behavior(server, reference).await,
            Resource::Endpoint => delete_endpoint(server, reference).await,
            Resource::TestSet => delete_test_set(server, reference).await,
        }
    }

    /// The names of every resource of this kind, in creation order.
    pub(super) async fn names(self, server: &Server) -> Vec<String> {
        let lister = match self {
            Resource::Metric => Lister::Metrics,
            Resource::Behavior => Lister::Behaviors,
            Resource::Endpoint => Lister::Endpoints,
            Resource::TestSet => Lister::TestSets,
        };
        lister.every_page(server, 0).await.concat()
    }
}

/// A list RPC: `ListMetrics`, ..., `ListTests` (of one test set).
#[derive(Clone, Copy, Debug)]
pub(super) enum Lister {
    Metrics,
    Behaviors,
    Endpoints,
    TestSets,
    Tests,
}

/// The test set whose tests `Lister::Tests` lists.
const TEST_SET: &str = "listed";

/// One page of a list: the names of its items (of a test, its prompt) and the next page's token.
#[derive(Debug)]
pub(super) struct Page {
    pub(super) names: Vec<String>,
    pub(super) next_page_token: String,
}

impl Lister {
    /// Creates `count` items of the kind this RPC lists (for ListTests, a test set of `count`
    /// tests) and returns their names in creation order.
    pub(super) async fn create(self, server: &Server, count: usize) -> Vec<String> {
        let names: Vec<String> = (0..count).map(|i| format!("item-{i:04}")).collect();
        let resource = match self {
            Lister::Metrics => Resource::Metric,
            Lister::Behaviors => Resource::Behavior,
            Lister::Endpoints => Resource::Endpoint,
            Lister::TestSets => Resource::TestSet,
            Lister::Tests => {
                let tests = names.iter().map(|prompt| test(prompt, "", &[])).collect();
                create_test_set(server, TEST_SET, &[], tests).await;
                return names;
            }
        };
        for name in &names {
            resource.create(server, name).await;
        }
        names
    }

    /// One call of this RPC.
    pub(super) async fn page(
        self,
        server: &Server,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page, Status> {
        let page_token = page_token.to_string();
        let (names, next_page_token) = match self {
            Lister::Metrics => {
                let request = pb::ListMetricsRequest {
                    page_size,
                    page_token,
                };
                let page = server.metrics().list_metrics(request).await?.into_inner();
                let names = page.metrics.into_iter().map(|m| m.name).collect();
                (names, page.next_page_token)
            }
            Lister::Behaviors => {
                let request = pb::ListBehaviorsRequest {
                    page_size,
                    page_token,
                };
                let page = server
                    .behaviors()
                    .list_behaviors(request)
                    .await?
                    .into_inner();
                let names = page.behaviors.into_iter().map(|b| b.name).collect();
                (names, page.next_page_token)
            }
            Lister::Endpoints => {
                let request = pb::ListEndpointsRequest {
                    page_size,
                    page_token,
                };
                let page = server
                    .endpoints()
                    .list_endpoints(request)
                    .await?
                    .into_inner();
                let names = page.endpoints.into_iter().map(|e| e.name).collect();
                (names, page.next_page_token)
            }
            Lister::TestSets => {
                let request = pb::ListTestSetsRequest {
                    page_size,
                    page_token,
                };
                let page = server
                    .test_sets()
                    .list_test_sets(request)
                    .await?
                    .into_inner();
                let names = page.test_sets.into_iter().map(|s| s.name).collect();
                (names, page.next_page_token)
            }
            Lister::Tests => {
                let request = pb::ListTestsRequest {
                    test_set: TEST_SET.into(),
                    page_size,
                    page_token,
                };
                let page = server.test_sets().list_tests(request).await?.into_inner();
                let names = page.tests.into_iter().map(|t| t.prompt).collect();
                (names, page.next_page_token)
            }
        };
        Ok(Page {
            names,
            next_page_token,
        })
    }

    /// Every page from the first, read with `page_size`: the names on each. Each page's token
    /// differs from the one before.
    pub(super) async fn every_page(self, server: &Server, page_size: i32) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.page(server, page_size, &token).await.expect("list");
            pages.push(page.names);
            if page.next_page_token.is_empty() {
                return pages;
            }
            assert_ne!(page.next_page_token, token, "the same token twice");
            token = page.next_page_token;
            assert!(pages.len() < 100, "paging does not end");
        }
    }
}
