//! How many endpoint calls a run keeps in flight.

/// The server's concurrency settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcurrencyLimits {
    /// Calls in flight for a run when neither the request nor the endpoint sets a limit.
    pub default: u32,
    /// Most calls in flight for one run, whatever is asked.
    pub cap: u32,
}

impl ConcurrencyLimits {
    /// The concurrency of a parallel run: the lowest limit `asked` sets (0: none), else the
    /// default, and never more than the cap nor less than 1.
    pub fn for_run(&self, asked: &[u32]) -> u32 {
        let chosen = asked
            .iter()
            .copied()
            .filter(|&c| c > 0)
            .min()
            .unwrap_or(self.default);
        chosen.min(self.cap).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ConcurrencyLimits = ConcurrencyLimits {
        default: 16,
        cap: 256,
    };

    #[test]
    fn a_limit_asked_for_is_honoured_above_the_default_up_to_the_cap() {
        assert_eq!(LIMITS.for_run(&[100, 0]), 100);
        assert_eq!(LIMITS.for_run(&[0, 40]), 40);
        assert_eq!(LIMITS.for_run(&[100, 40]), 40);
        assert_eq!(LIMITS.for_run(&[1000, 0]), 256);
    }

    #[test]
    fn the_default_applies_only_when_nothing_is_asked() {
        assert_eq!(LIMITS.for_run(&[0, 0]), 16);
        assert_eq!(LIMITS.for_run(&[]), 16);
        let capped = ConcurrencyLimits {
            default: 500,
            cap: 64,
        };
        assert_eq!(capped.for_run(&[]), 64);
        let zero = ConcurrencyLimits { default: 0, cap: 0 };
        assert_eq!(zero.for_run(&[]), 1);
    }
}
