//! The pace of rate-limited endpoints, kept in a store that several replicas share, so that an
//! endpoint's requests per minute hold for all of them together.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::endpoint_client::SharedPace;
use crate::store::Store;

/// Reserves each call's moment in the store.
pub(super) struct StorePace {
    pub(super) store: Arc<dyn Store>,
}

impl std::fmt::Debug for StorePace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorePace")
    }
}

#[async_trait]
impl SharedPace for StorePace {
    async fn wait(&self, endpoint: Uuid, interval: Duration) -> Duration {
        let now = chrono::Utc::now().timestamp_micros();
        let interval_us = i64::try_from(interval.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        match self.store.reserve_call(endpoint, now, interval_us).await {
            Ok(at) => Duration::from_micros(u64::try_from(at - now).unwrap_or(0)),
            Err(e) => {
                // The replica's own limit still holds; only the other replicas' share is unknown.
                tracing::warn!(endpoint = %endpoint, error = %e, "the shared pace could not be read; the endpoint's rate holds for this replica only");
                Duration::ZERO
            }
        }
    }
}
