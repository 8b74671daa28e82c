//! The catalogue: metrics, behaviours, endpoints and test sets between a decoded request and the
//! store. It resolves references (id or name), fills in defaults (declared in the domain), applies
//! the judge rules, validates, and runs every update as one transaction (read, apply the mask,
//! validate, write), so concurrent updates of one resource never lose a write.
//!
//! It knows nothing of gRPC: `api/` converts requests into drafts ([`crate::domain`]) and calls it.

mod behaviors;
mod endpoints;
mod import;
mod metrics;
mod suite;
mod test_sets;

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::Ref;
use crate::endpoint_client::{OutboundPolicy, SecretEnv};
use crate::error::Result;
use crate::store::Store;

pub use import::{ImportTarget, Imported};
pub use suite::{Action, Applied, Suite, SuiteTestSet, TestChanges};
pub use test_sets::MAX_TESTS_PER_CALL;

/// Catalogue operations over one store.
pub struct Catalogue {
    store: Arc<dyn Store>,
    /// Whether the server has a default judge for LLM-judge metrics that name none.
    default_judge: bool,
    /// The environment variables endpoints and inline judges may refer to.
    secret_env: Arc<SecretEnv>,
    /// The addresses endpoints and inline judges may be at.
    outbound: Arc<OutboundPolicy>,
    /// Longest prompt or expected response of a test, in bytes.
    max_stored_bytes: usize,
}

impl Catalogue {
    /// A catalogue over `store`; `default_judge` tells whether the server has a default judge.
    pub fn new(store: Arc<dyn Store>, default_judge: bool) -> Self {
        Catalogue {
            store,
            default_judge,
            secret_env: Arc::default(),
            outbound: Arc::default(),
            max_stored_bytes: crate::domain::DEFAULT_MAX_STORED_OUTPUT_BYTES,
        }
    }

    /// This catalogue, refusing tests whose prompt or expected response is longer than `bytes`
    /// (`--max-stored-output-bytes`), so that every stored test and result can be read back.
    pub fn with_max_stored_output_bytes(mut self, bytes: usize) -> Self {
        self.max_stored_bytes = bytes;
        self
    }

    /// This catalogue, refusing endpoints and inline judges whose URL is an address `outbound`
    /// refuses (names are checked when calls resolve them).
    pub fn with_outbound(mut self, outbound: OutboundPolicy) -> Self {
        self.outbound = Arc::new(outbound);
        self
    }

    /// This catalogue, refusing endpoints and judges that refer to environment variables
    /// `secret_env` does not allow (default: [`crate::endpoint_client::DEFAULT_SECRET_ENV`]).
    pub fn with_secret_env(mut self, secret_env: SecretEnv) -> Self {
        self.secret_env = Arc::new(secret_env);
        self
    }

    /// Metric references as ids, in the order given and without repeats; an unknown one fails
    /// the whole call with `NotFound`.
    async fn metric_ids(&self, metrics: &[Ref]) -> Result<Vec<Uuid>> {
        Ok(self
            .store
            .resolve_metrics(metrics)
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect())
    }
}

/// The ids of references that are resolved already (a draft's metrics after
/// [`Catalogue::metric_ids`]).
fn ids(references: &[Ref]) -> Vec<Uuid> {
    references
        .iter()
        .filter_map(|r| match r {
            Ref::Id(id) => Some(*id),
            Ref::Name(_) => None,
        })
        .collect()
}

/// References to ids.
fn refs(ids: Vec<Uuid>) -> Vec<Ref> {
    ids.into_iter().map(Ref::Id).collect()
}
