//! Tokens a call used and what they cost.

use serde::{Deserialize, Serialize};

/// Tokens of one call, or of many summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read (OpenAI's `prompt_tokens`).
    pub input_tokens: u64,
    /// Tokens written (OpenAI's `completion_tokens`).
    pub output_tokens: u64,
}

impl Usage {
    /// Input and output tokens together.
    pub fn total(self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Adds `other`'s tokens.
    pub fn add(&mut self, other: Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }
}

/// What an endpoint's tokens cost; the default is free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// USD per million input tokens.
    pub input_usd_per_million_tokens: f64,
    /// USD per million output tokens.
    pub output_usd_per_million_tokens: f64,
}

impl Pricing {
    /// The cost of `usage` in USD.
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_usd_per_million_tokens
            + usage.output_tokens as f64 * self.output_usd_per_million_tokens)
            / 1e6
    }

    /// Prices are finite and not negative; `field` names the pricing in errors.
    pub fn validate(&self, field: &str) -> crate::error::Result<()> {
        for (name, price) in [
            (
                "input_usd_per_million_tokens",
                self.input_usd_per_million_tokens,
            ),
            (
                "output_usd_per_million_tokens",
                self.output_usd_per_million_tokens,
            ),
        ] {
            if !(price.is_finite() && price >= 0.0) {
                return Err(crate::error::Error::invalid(
                    format!("{field}.{name}"),
                    format!("must be a finite number >= 0, got {price}"),
                ));
            }
        }
        Ok(())
    }
}

/// What the calls of many results spent: the endpoint's, and apart the judges' and embeddings'.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spending {
    /// Tokens of the endpoint calls.
    pub usage: Usage,
    /// Cost of the endpoint calls in USD.
    pub cost_usd: f64,
    /// Tokens of the judge and embedding calls.
    pub judge_usage: Usage,
    /// Cost of the judge and embedding calls in USD.
    pub judge_cost_usd: f64,
}

impl Spending {
    /// Counts what one result spent.
    pub fn add(&mut self, result: &super::TestResult) {
        self.usage.add(result.usage.unwrap_or_default());
        self.cost_usd += result.cost_usd;
        self.judge_usage.add(result.judge_usage);
        self.judge_cost_usd += result.judge_cost_usd;
    }

    /// Endpoint and judge calls together, in USD.
    pub fn total_usd(&self) -> f64 {
        self.cost_usd + self.judge_cost_usd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_tokens_at_the_price_per_million() {
        let pricing = Pricing {
            input_usd_per_million_tokens: 2.5,
            output_usd_per_million_tokens: 10.0,
        };
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 200,
        };
        assert!((pricing.cost(usage) - 0.0045).abs() < 1e-15);
        assert_eq!(Pricing::default().cost(usage), 0.0);
    }
}
