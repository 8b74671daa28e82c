//! `TestSetService`: proto <-> domain conversion of test sets and tests, their CRUD, and bulk
//! test management.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::mask;
use super::{metric_ids, non_empty, reference, required, timestamp, update_target, uuid};
use crate::domain::{PageRequest, Ref, Test, TestSet, Timestamp};
use crate::error::{Error, Result};
use crate::proto::v1 as pb;
use crate::store::Store;

/// Most tests one `AddTests` call may carry; larger imports are split by the client.
const MAX_TESTS_PER_CALL: usize = 100_000;

/// The gRPC `TestSetService`.
pub struct TestSetApi {
    store: Arc<dyn Store>,
}

impl TestSetApi {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        TestSetApi { store }
    }

    /// A test set from the API: metric references resolved, validated.
    async fn to_domain(&self, p: pb::TestSet, id: Uuid, created_at: Timestamp) -> Result<TestSet> {
        let metric_ids = metric_ids(&*self.store, &p.metrics, "test_set.metrics").await?;
        let test_set = TestSet {
            id,
            name: p.name,
            description: p.description,
            metric_ids,
            test_count: 0,
            created_at,
            updated_at: chrono::Utc::now(),
        };
        test_set.validate("test_set")?;
        Ok(test_set)
    }

    /// Tests from the API, validated, their behaviour references resolved (each distinct one
    /// once, so a bulk import with one behaviour costs one lookup).
    async fn tests_from_proto(&self, test_set_id: Uuid, tests: Vec<pb::Test>) -> Result<Vec<Test>> {
        let mut behaviors: HashMap<String, Uuid> = HashMap::new();
        let now = chrono::Utc::now();
        let mut out = Vec::with_capacity(tests.len());
        for (i, t) in tests.into_iter().enumerate() {
            let behavior_id = match t.behavior.as_str() {
                "" => None,
                r => match behaviors.get(r) {
                    Some(id) => Some(*id),
                    None => {
                        let id = self.store.get_behavior(&Ref::parse(r)).await?.id;
                        behaviors.insert(r.to_string(), id);
                        Some(id)
                    }
                },
            };
            let test = Test {
                id: Uuid::now_v7(),
                test_set_id,
                prompt: t.prompt,
                expected_response: non_empty(t.expected_response),
                behavior_id,
                category: t.category,
                topic: t.topic,
                metadata: t.metadata.into_iter().collect(),
                created_at: now,
            };
            test.validate(&format!("tests[{i}]"))?;
            out.push(test);
        }
        Ok(out)
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
        expected_response: t.expected_response.unwrap_or_default(),
        behavior: t.behavior_id.map(|b| b.to_string()).unwrap_or_default(),
        category: t.category,
        topic: t.topic,
        metadata: t.metadata.into_iter().collect(),
        created_at: Some(timestamp(t.created_at)),
    }
}

mask::named_with_metrics!(pb::TestSet);

#[tonic::async_trait]
impl pb::test_set_service_server::TestSetService for TestSetApi {
    async fn create_test_set(
        &self,
        request: Request<pb::CreateTestSetRequest>,
    ) -> Result<Response<pb::TestSet>, Status> {
        let p = required(request.into_inner().test_set, "test_set")?;
        let test_set = self
            .to_domain(p, Uuid::now_v7(), chrono::Utc::now())
            .await?;
        self.store.create_test_set(&test_set).await?;
        tracing::info!(test_set_id = %test_set.id, name = %test_set.name, "test set created");
        Ok(Response::new(to_proto(test_set)))
    }

    async fn get_test_set(
        &self,
        request: Request<pb::GetTestSetRequest>,
    ) -> Result<Response<pb::TestSet>, Status> {
        let r = reference(&request.into_inner().test_set, "test_set")?;
        Ok(Response::new(to_proto(self.store.get_test_set(&r).await?)))
    }

    async fn list_test_sets(
        &self,
        request: Request<pb::ListTestSetsRequest>,
    ) -> Result<Response<pb::ListTestSetsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .store
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
        let current = self
            .store
            .get_test_set(&update_target(&p.id, &p.name, "test_set")?)
            .await?;
        let (id, created_at, test_count) = (current.id, current.created_at, current.test_count);
        let merged = mask::apply(to_proto(current), &p, r.update_mask.as_ref())?;
        let mut test_set = self.to_domain(merged, id, created_at).await?;
        self.store.update_test_set(&test_set).await?;
        test_set.test_count = test_count;
        Ok(Response::new(to_proto(test_set)))
    }

    async fn delete_test_set(
        &self,
        request: Request<pb::DeleteTestSetRequest>,
    ) -> Result<Response<()>, Status> {
        let r = reference(&request.into_inner().test_set, "test_set")?;
        let test_set = self.store.get_test_set(&r).await?;
        self.store.delete_test_set(test_set.id).await?;
        Ok(Response::new(()))
    }

    async fn add_tests(
        &self,
        request: Request<pb::AddTestsRequest>,
    ) -> Result<Response<pb::AddTestsResponse>, Status> {
        let r = request.into_inner();
        let test_set = self
            .store
            .get_test_set(&reference(&r.test_set, "test_set")?)
            .await?;
        if r.tests.is_empty() {
            return Err(Error::invalid("tests", "give at least one test").into());
        }
        if r.tests.len() > MAX_TESTS_PER_CALL {
            return Err(Error::invalid(
                "tests",
                format!(
                    "{} tests in one call; at most {MAX_TESTS_PER_CALL}",
                    r.tests.len()
                ),
            )
            .into());
        }
        let tests = self.tests_from_proto(test_set.id, r.tests).await?;
        self.store.add_tests(test_set.id, &tests).await?;
        tracing::info!(test_set_id = %test_set.id, count = tests.len(), "tests added");
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
        let test_set = self
            .store
            .get_test_set(&reference(&r.test_set, "test_set")?)
            .await?;
        let page = self.store.list_tests(test_set.id, page_request).await?;
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
        let test_set = self
            .store
            .get_test_set(&reference(&r.test_set, "test_set")?)
            .await?;
        if r.test_ids.is_empty() {
            return Err(Error::invalid("test_ids", "give at least one test id").into());
        }
        let ids = r
            .test_ids
            .iter()
            .enumerate()
            .map(|(i, id)| uuid(id, &format!("test_ids[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let removed_count = self.store.remove_tests(test_set.id, &ids).await?;
        Ok(Response::new(pb::RemoveTestsResponse { removed_count }))
    }
}
