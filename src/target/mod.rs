//! Calling endpoints: HTTP targets and OpenAI-compatible chat targets.

/// A parsed body template (stub until the target module lands).
pub struct BodyTemplate;

impl BodyTemplate {
    /// Parses a body template.
    pub fn parse(_template: &str) -> Result<Self, String> {
        Ok(BodyTemplate)
    }
}
