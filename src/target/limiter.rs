//! A small async rate limiter: call starts at least `1 / rate` seconds apart.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces the starts of calls shared by all tasks holding it.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next_free: Mutex<Option<Instant>>,
}

/// The longest spacing a tiny rate can ask for.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

impl RateLimiter {
    /// A limiter for `per_second` calls per second; `None` when the rate means unlimited
    /// (0, negative or not finite).
    pub fn new(per_second: f64) -> Option<RateLimiter> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return None;
        }
        let interval = Duration::try_from_secs_f64(1.0 / per_second)
            .unwrap_or(MAX_INTERVAL)
            .min(MAX_INTERVAL);
        Some(RateLimiter {
            interval,
            next_free: Mutex::new(None),
        })
    }

    /// The spacing between two call starts.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for the next free slot and takes it.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self
                .next_free
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let slot = match *next {
                Some(free) if free > now => free,
                _ => now,
            };
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn zero_means_unlimited() {
        assert!(RateLimiter::new(0.0).is_none());
        assert!(RateLimiter::new(f64::NAN).is_none());
        assert_eq!(
            RateLimiter::new(4.0).unwrap().interval(),
            Duration::from_millis(250)
        );
        assert_eq!(RateLimiter::new(1e-300).unwrap().interval(), MAX_INTERVAL);
    }

    #[tokio::test]
    async fn starts_are_spaced_across_tasks() {
        let limiter = Arc::new(RateLimiter::new(20.0).unwrap());
        let begin = Instant::now();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut starts = Vec::new();
        for task in tasks {
            starts.push(task.await.unwrap());
        }
        starts.sort();
        // Five starts at 50 ms spacing: the last one at least 200 ms after the first.
        assert!(
            starts[4] - begin >= Duration::from_millis(195),
            "{starts:?}"
        );
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(45), "{starts:?}");
        }
    }
}
