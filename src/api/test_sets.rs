//! `TestSetService`: proto <-> domain conversion of test sets and tests, their CRUD, and bulk
//! test management.

use std::sync::Arc;

use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use super::{
    mask_paths, reference, references, request_limit, required, timestamp, update_target, uuid,
};
use crate::catalogue::{Action, Applied, Catalogue, ImportTarget, Suite, SuiteTestSet};
use crate::domain::{GroupDraft, PageRequest, Ref, Test, TestDraft, TestSet};
use crate::error::{Error, Result};
use crate::proto::v1 as pb;

/// The gRPC `TestSetService`.
pub struct TestSetApi {
    catalogue: Arc<Catalogue>,
    /// The service's decoding limit, named when a message of an import is above it.
    max_request_bytes: usize,
}

impl TestSetApi {
    /// A service over the catalogue, decoding messages of up to `max_request_bytes`.
    pub fn new(catalogue: Arc<Catalogue>, max_request_bytes: usize) -> Self {
        TestSetApi {
            catalogue,
            max_request_bytes,
        }
    }
}

/// A test set from the API as a draft; `field` is its path in the request.
fn from_proto(p: pb::TestSet, field: &str) -> Result<GroupDraft> {
    Ok(GroupDraft {
        metrics: references(&p.metrics, &format!("{field}.metrics"))?,
        name: p.name,
        description: p.description,
    })
}

/// A test from the API as a draft.
fn test_from_proto(t: pb::Test) -> TestDraft {
    TestDraft {
        prompt: t.prompt,
        expected_response: t.expected_response,
        behavior: (!t.behavior.is_empty()).then(|| Ref::parse(&t.behavior)),
        category: t.category,
        topic: t.topic,
        metadata: t.metadata.into_iter().collect(),
        key: t.key,
    }
}

/// The tests of one message of an import; `index` counts messages from 0. Only the first names
/// the test set.
pub(super) fn import_piece(
    message: pb::ImportTestsRequest,
    index: usize,
) -> Result<Vec<TestDraft>> {
    if index > 0
        && (!message.test_set.is_empty() || message.new_test_set.is_some() || message.replace)
    {
        return Err(Error::invalid(
            "test_set",
            format!(
                "only the first message of an import names the test set (message {index} does)"
            ),
        ));
    }
    Ok(message.tests.into_iter().map(test_from_proto).collect())
}

/// The test set that the first message of an import names.
pub(super) fn import_target(first: &mut pb::ImportTestsRequest) -> Result<ImportTarget> {
    match (first.test_set.trim().is_empty(), first.new_test_set.take()) {
        (true, None) => Err(Error::invalid(
            "test_set",
            "the first message names the test set: give `test_set` (an id or name) or `new_test_set`",
        )),
        (false, Some(_)) => Err(Error::invalid(
            "new_test_set",
            "give either `test_set` or `new_test_set`, not both",
        )),
        (false, None) if first.replace => Ok(ImportTarget::Replace(Ref::parse(&first.test_set))),
        (false, None) => Ok(ImportTarget::Existing(Ref::parse(&first.test_set))),
        (true, Some(_)) if first.replace => Err(Error::invalid(
            "replace",
            "replaces the tests of an existing test set: give `test_set`, not `new_test_set`",
        )),
        (true, Some(new)) => Ok(ImportTarget::New(from_proto(new, "new_test_set")?)),
    }
}

/// A suite from the API; errors name items by their place in the request (`metrics[2].kind`).
pub(super) fn suite_from_proto(r: pb::ApplySuiteRequest) -> Result<Suite> {
    let each = |field: &str, i: usize, e: Error| e.within(field, &format!("{field}s[{i}]"));
    Ok(Suite {
        metrics: (r.metrics.into_iter().enumerate())
            .map(|(i, m)| super::metrics::from_proto(m).map_err(|e| each("metric", i, e)))
            .collect::<Result<_>>()?,
        behaviors: (r.behaviors.into_iter().enumerate())
            .map(|(i, b)| super::behaviors::from_proto(b).map_err(|e| each("behavior", i, e)))
            .collect::<Result<_>>()?,
        endpoints: r
            .endpoints
            .into_iter()
            .map(super::endpoints::from_proto)
            .collect(),
        test_sets: (r.test_sets.into_iter().enumerate())
            .map(|(i, t)| {
                Ok(SuiteTestSet {
                    test_set: GroupDraft {
                        metrics: references(&t.metrics, &format!("test_sets[{i}].metrics"))?,
                        name: t.name,
                        description: t.description,
                    },
                    tests: t.tests.into_iter().map(test_from_proto).collect(),
                })
            })
            .collect::<Result<_>>()?,
    })
}

fn applied_to_proto(a: Applied) -> pb::AppliedResource {
    let action = match a.action {
        Action::Created => pb::ApplyAction::Created,
        Action::Updated => pb::ApplyAction::Updated,
        Action::Unchanged => pb::ApplyAction::Unchanged,
    };
    pb::AppliedResource {
        kind: a.kind.to_string(),
        name: a.name,
        id: a.id.to_string(),
        action: action.into(),
        tests: a.tests.map(|t| pb::AppliedTests {
            created: t.created,
            updated: t.updated,
            removed: t.removed,
            unchanged: t.unchanged,
        }),
    }
}

fn to_proto(t: TestSet) -> pb::TestSet {
    pb::TestSet {
        id: t.id.to_string(),
        name: t.name,
        description: t.description,
        metrics: t.metric_ids.iter().map(Uuid::to_string).collect(),
        test_count: t.test_count,
        created_at: Some(timestamp(t.created_at)),
        updated_at: Some(timestamp(t.updated_at)),
    }
}

fn test_to_proto(t: Test) -> pb::Test {
    pb::Test {
        id: t.id.to_string(),
        test_set_id: t.test_set_id.to_string(),
        prompt: t.prompt,
        expected_response: t.expected_response,
        behavior: t.behavior_id.map(|b| b.to_string()).unwrap_or_default(),
        category: t.category,
        topic: t.topic,
        metadata: t.metadata.into_iter().collect(),
        created_at: Some(timestamp(t.created_at)),
        key: t.key,
    }
}

#[tonic::async_trait]
impl pb::test_set_service_server::TestSetService for TestSetApi {
    async fn create_test_set(
        &self,
        request: Request<pb::CreateTestSetRequest>,
    ) -> Result<Response<pb::TestSet>, Status> {
        let p = required(request.into_inner().test_set, "test_set")?;
        let test_set = self
            .catalogue
            .create_test_set(from_proto(p, "test_set")?)
            .await?;
        Ok(Response::new(to_proto(test_set)))
    }

    async fn get_test_set(
        &self,
        request: Request<pb::GetTestSetRequest>,
    ) -> Result<Response<pb::TestSet>, Status> {
        let r = reference(&request.into_inner().test_set, "test_set")?;
        Ok(Response::new(to_proto(
            self.catalogue.get_test_set(&r).await?,
        )))
    }

    async fn list_test_sets(
        &self,
        request: Request<pb::ListTestSetsRequest>,
    ) -> Result<Response<pb::ListTestSetsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .catalogue
            .list_test_sets(PageRequest::parse(r.page_size, &r.page_token)?)
            .await?;
        Ok(Response::new(pb::ListTestSetsResponse {
            next_page_token: page.next_token(),
            test_sets: page.items.into_iter().map(to_proto).collect(),
        }))
    }

    async fn update_test_set(
        &self,
        request: Request<pb::UpdateTestSetRequest>,
    ) -> Result<Response<pb::TestSet>, Status> {
        let r = request.into_inner();
        let p = required(r.test_set, "test_set")?;
        let target = update_target(&p.id, &p.name, "test_set")?;
        let test_set = self
            .catalogue
            .update_test_set(
                &target,
                from_proto(p, "test_set")?,
                &mask_paths(r.update_mask),
            )
            .await?;
        Ok(Response::new(to_proto(test_set)))
    }

    async fn delete_test_set(
        &self,
        request: Request<pb::DeleteTestSetRequest>,
    ) -> Result<Response<()>, Status> {
        let r = reference(&request.into_inner().test_set, "test_set")?;
        self.catalogue.delete_test_set(&r).await?;
        Ok(Response::new(()))
    }

    async fn add_tests(
        &self,
        request: Request<pb::AddTestsRequest>,
    ) -> Result<Response<pb::AddTestsResponse>, Status> {
        let r = request.into_inner();
        let test_set = reference(&r.test_set, "test_set")?;
        let drafts = r.tests.into_iter().map(test_from_proto).collect();
        let tests = self.catalogue.add_tests(&test_set, drafts).await?;
        Ok(Response::new(pb::AddTestsResponse {
            tests: tests.into_iter().map(test_to_proto).collect(),
        }))
    }

    async fn list_tests(
        &self,
        request: Request<pb::ListTestsRequest>,
    ) -> Result<Response<pb::ListTestsResponse>, Status> {
        let r = request.into_inner();
        let page_request = PageRequest::parse(r.page_size, &r.page_token)?;
        let test_set = reference(&r.test_set, "test_set")?;
        let page = self.catalogue.list_tests(&test_set, page_request).await?;
        Ok(Response::new(pb::ListTestsResponse {
            next_page_token: page.next_token(),
            tests: page.items.into_iter().map(test_to_proto).collect(),
        }))
    }

    async fn remove_tests(
        &self,
        request: Request<pb::RemoveTestsRequest>,
    ) -> Result<Response<pb::RemoveTestsResponse>, Status> {
        let r = request.into_inner();
        let test_set = reference(&r.test_set, "test_set")?;
        let ids = r
            .test_ids
            .iter()
            .enumerate()
            .map(|(i, id)| uuid(id, &format!("test_ids[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let removed_count = self.catalogue.remove_tests(&test_set, &ids).await?;
        Ok(Response::new(pb::RemoveTestsResponse { removed_count }))
    }

    async fn apply_suite(
        &self,
        request: Request<pb::ApplySuiteRequest>,
    ) -> Result<Response<pb::ApplySuiteResponse>, Status> {
        let suite = suite_from_proto(request.into_inner())?;
        let applied = self.catalogue.apply_suite(suite).await?;
        Ok(Response::new(pb::ApplySuiteResponse {
            resources: applied.into_iter().map(applied_to_proto).collect(),
        }))
    }

    async fn import_tests(
        &self,
        request: Request<Streaming<pb::ImportTestsRequest>>,
    ) -> Result<Response<pb::ImportTestsResponse>, Status> {
        let mut messages = request.into_inner();
        let Some(mut first) = messages.message().await? else {
            return Err(Error::invalid("test_set", "the import sent no message").into());
        };
        let target = import_target(&mut first)?;
        let pieces = futures::stream::once(async { Ok(first) })
            .chain(messages)
            .enumerate()
            .map(|(index, message)| match message {
                Ok(message) => import_piece(message, index),
                Err(status) if request_limit::is_over_limit(&status) => {
                    Err(Error::ResourceExhausted(format!(
                        "{}; nothing was imported",
                        request_limit::over_limit(&status, self.max_request_bytes).message()
                    )))
                }
                Err(status) => Err(Error::Unavailable(format!(
                    "the import stream broke ({}: {}); nothing was imported",
                    status.code(),
                    status.message()
                ))),
            });
        let imported = self
            .catalogue
            .import_tests(target, Box::pin(pieces))
            .await?;
        Ok(Response::new(pb::ImportTestsResponse {
            test_set: Some(to_proto(imported.test_set)),
            imported_count: imported.count,
        }))
    }
}
