//! The per-endpoint gate: every attempt to call one endpoint, from every run and judge of the
//! process, passes it. It holds a token bucket (requests per minute) and a concurrency window
//! (fixed at the endpoint's `max_concurrency`, or adaptive: halved on HTTP 429, grown by one per
//! success). When other processes call the endpoint too (replicas on one database), a
//! [`SharedPace`] spaces the calls of all of them, so the rate holds for the cluster.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::domain::Endpoint;

/// Ceiling of an adaptive window when the endpoint sets no `max_concurrency`.
pub(crate) const ADAPTIVE_CEILING: u32 = 64;

/// The gate's settings, taken from an endpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GateSettings {
    /// Calls per second; `None`: unlimited.
    per_second: Option<f64>,
    /// Most calls in flight; `None`: unlimited.
    max_concurrency: Option<u32>,
    /// Whether the window adapts to 429s.
    adaptive: bool,
}

impl GateSettings {
    /// The settings of `endpoint`: `requests_per_minute`, else `rate_limit_per_second`.
    pub(crate) fn of(endpoint: &Endpoint) -> Self {
        let rpm = endpoint.call_policy.requests_per_minute;
        let per_second = if rpm > 0 {
            f64::from(rpm) / 60.0
        } else {
            endpoint.rate_limit_per_second
        };
        let adaptive = endpoint.call_policy.adaptive_concurrency;
        let max_concurrency = match endpoint.max_concurrency {
            0 if adaptive => Some(ADAPTIVE_CEILING),
            0 => None,
            n => Some(n),
        };
        GateSettings {
            per_second: (per_second.is_finite() && per_second > 0.0).then_some(per_second),
            max_concurrency,
            adaptive,
        }
    }

    /// Tokens the bucket holds: one second's worth of calls, at least one.
    fn capacity(&self) -> f64 {
        self.per_second.map_or(1.0, |rate| rate.max(1.0))
    }
}

#[derive(Debug)]
struct State {
    settings: GateSettings,
    /// Tokens in the bucket; negative when callers have reserved future tokens.
    tokens: f64,
    refilled: Instant,
    in_flight: u32,
    /// Calls allowed in flight now.
    window: u32,
}

/// Spaces the calls of endpoints across every process that calls them.
#[async_trait]
pub trait SharedPace: Send + Sync + std::fmt::Debug {
    /// How long a call of `endpoint` must wait for its moment, the calls of every process spaced
    /// `interval` apart.
    async fn wait(&self, endpoint: Uuid, interval: Duration) -> Duration;
}

/// One endpoint's gate; share it with `Arc`.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
    freed: Notify,
    /// The pace shared with other processes, and the endpoint's id in it.
    shared: Option<(Arc<dyn SharedPace>, Uuid)>,
}

impl Gate {
    /// A gate with `settings`, its bucket full and its window at the maximum; its rate is kept
    /// with other processes through `shared` when given.
    pub(crate) fn new(settings: GateSettings, shared: Option<(Arc<dyn SharedPace>, Uuid)>) -> Self {
        Gate {
            shared,
            state: Mutex::new(State {
                tokens: settings.capacity(),
                refilled: Instant::now(),
                in_flight: 0,
                window: settings.max_concurrency.unwrap_or(u32::MAX),
                settings,
            }),
            freed: Notify::new(),
        }
    }

    /// Applies new settings (the endpoint was changed); calls in flight stay counted.
    pub(crate) fn configure(&self, settings: GateSettings) {
        let mut state = self.lock();
        if state.settings == settings {
            return;
        }
        let max = settings.max_concurrency.unwrap_or(u32::MAX);
        state.window = if settings.adaptive {
            state.window.clamp(1, max)
        } else {
            max
        };
        state.tokens = state.tokens.min(settings.capacity());
        state.settings = settings;
        drop(state);
        self.freed.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a place in the window, then for a token; the place is held until the returned
    /// pass is dropped.
    pub(crate) async fn enter(&self) -> Pass<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between the check and the wait wakes us.
            freed.as_mut().enable();
            {
                let mut state = self.lock();
                if state.in_flight < state.window {
                    state.in_flight += 1;
                    break;
                }
            }
            freed.await;
        }
        let pass = Pass { gate: self };
        if let Some(wait) = self.reserve_token() {
            tokio::time::sleep(wait).await;
        }
        let rate = self.lock().settings.per_second;
        if let (Some(rate), Some((pace, endpoint))) = (rate, &self.shared) {
            let wait = pace
                .wait(*endpoint, Duration::from_secs_f64(1.0 / rate))
                .await;
            tokio::time::sleep(wait).await;
        }
        pass
    }

    /// Takes a token, possibly one that is not there yet; returns how long to wait for it.
    fn reserve_token(&self) -> Option<Duration> {
        let mut state = self.lock();
        let rate = state.settings.per_second?;
        let now = Instant::now();
        let elapsed = now.duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(state.settings.capacity());
        state.refilled = now;
        state.tokens -= 1.0;
        (state.tokens < 0.0).then(|| Duration::from_secs_f64(-state.tokens / rate))
    }

    /// Calls allowed in flight now.
    #[cfg(test)]
    fn window(&self) -> u32 {
        self.lock().window
    }

    fn adapt(&self, change: impl FnOnce(u32, u32) -> u32) {
        let mut state = self.lock();
        if state.settings.adaptive {
            let max = state.settings.max_concurrency.unwrap_or(ADAPTIVE_CEILING);
            state.window = change(state.window, max).clamp(1, max);
        }
    }
}

/// A place in a gate's window, for one attempt.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    gate: &'a Gate,
}

impl Pass<'_> {
    /// The attempt succeeded: an adaptive window grows by one.
    pub(crate) fn succeeded(self) {
        self.gate.adapt(|window, _| window.saturating_add(1));
    }

    /// The endpoint answered 429: an adaptive window halves.
    pub(crate) fn throttled(self) {
        self.gate.adapt(|window, _| window / 2);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.gate.lock().in_flight -= 1;
        self.gate.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_second: Option<f64>, max: Option<u32>, adaptive: bool) -> GateSettings {
        GateSettings {
            per_second,
            max_concurrency: max,
            adaptive,
        }
    }

    #[tokio::test]
    async fn an_adaptive_window_halves_on_429_and_grows_by_one_within_bounds() {
        let gate = Gate::new(settings(None, Some(8), true), None);
        assert_eq!(gate.window(), 8);
        gate.enter().await.succeeded();
        assert_eq!(gate.window(), 8, "never above the maximum");
        for expected in [4, 2, 1, 1] {
            gate.enter().await.throttled();
            assert_eq!(gate.window(), expected, "never below one");
        }
        gate.enter().await.succeeded();
        gate.enter().await.succeeded();
        assert_eq!(gate.window(), 3);
    }

    #[tokio::test]
    async fn a_fixed_window_ignores_429() {
        let gate = Gate::new(settings(None, Some(3), false), None);
        gate.enter().await.throttled();
        assert_eq!(gate.window(), 3);
    }

    #[tokio::test]
    async fn the_window_bounds_passes_in_flight() {
        let gate = Arc::new(Gate::new(settings(None, Some(2), false), None));
        let first = gate.enter().await;
        let _second = gate.enter().await;
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move {
                gate.enter().await;
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a third pass must wait");
        drop(first);
        waiting.await.unwrap();
    }

    #[test]
    fn the_bucket_holds_one_second_of_calls_then_refills_at_the_rate() {
        let gate = Gate::new(settings(Some(5.0), None, false), None);
        for _ in 0..5 {
            assert_eq!(gate.reserve_token(), None, "a full bucket does not wait");
        }
        // The sixth and seventh calls wait for the tokens the rate adds: 200 and 400 ms.
        let sixth = gate.reserve_token().unwrap();
        let seventh = gate.reserve_token().unwrap();
        assert!(sixth <= Duration::from_millis(200) && sixth > Duration::from_millis(150));
        assert!(
            seventh > sixth + Duration::from_millis(150),
            "{sixth:?} {seventh:?}"
        );
    }

    #[test]
    fn requests_per_minute_and_rate_limit_per_second_are_one_limit() {
        use crate::endpoint_client::tests::{http_endpoint, mapping};
        let mut endpoint = http_endpoint("http://127.0.0.1:1/", "", mapping(""));
        endpoint.call_policy.requests_per_minute = 120;
        assert_eq!(GateSettings::of(&endpoint).per_second, Some(2.0));
        endpoint.call_policy.requests_per_minute = 0;
        endpoint.rate_limit_per_second = 3.0;
        assert_eq!(GateSettings::of(&endpoint).per_second, Some(3.0));
        endpoint.rate_limit_per_second = 0.0;
        assert_eq!(GateSettings::of(&endpoint).per_second, None);
    }

    #[tokio::test]
    async fn new_settings_apply_to_a_gate_in_use() {
        let gate = Gate::new(settings(None, Some(8), true), None);
        gate.enter().await.throttled();
        gate.configure(settings(None, Some(2), true));
        assert_eq!(gate.window(), 2);
        gate.configure(settings(None, Some(5), false));
        assert_eq!(gate.window(), 5);
    }
}
