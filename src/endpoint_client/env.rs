//! Values that refer to environment variables with `${env:NAME}`, resolved at call time so that
//! secrets never sit in the database or in memory longer than one request.

/// A value with `${env:NAME}` references, parsed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvTemplate {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Env(String),
}

/// A referenced environment variable that is not set (or not Unicode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {0:?} is not set in the server's environment, where it is read")]
pub struct MissingEnv(pub String);

impl EnvTemplate {
    /// Parses a value; an unterminated `${env:` or an empty or malformed name is an error.
    pub fn parse(value: &str) -> Result<EnvTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = value;
        while let Some(start) = rest.find("${env:") {
            let after = &rest[start + "${env:".len()..];
            let Some(end) = after.find('}') else {
                return Err(format!("unterminated \"${{env:\" in {value:?}"));
            };
            let name = after[..end].trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
            {
                return Err(format!(
                    "{:?} is not an environment variable name",
                    &after[..end]
                ));
            }
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            parts.push(Part::Env(name.to_string()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(EnvTemplate { parts })
    }

    /// Whether the value refers to no variable at all.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The value with every reference replaced by the variable's current value.
    pub fn resolve(&self) -> Result<String, MissingEnv> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Env(name) => {
                    let value = std::env::var(name).map_err(|_| MissingEnv(name.clone()))?;
                    out.push_str(&value);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_resolved_when_asked() {
        let name = format!("ASSAY_ENV_TEST_{}", std::process::id());
        let template = EnvTemplate::parse(&format!("Bearer ${{env:{name}}}!")).unwrap();
        assert!(!template.is_literal());
        assert_eq!(template.resolve(), Err(MissingEnv(name.clone())));
        // SAFETY: the variable name is unique to this test.
        unsafe { std::env::set_var(&name, "s3cret") };
        assert_eq!(template.resolve().unwrap(), "Bearer s3cret!");
        unsafe { std::env::remove_var(&name) };
    }

    #[test]
    fn literals_and_bad_references() {
        let plain = EnvTemplate::parse("text/plain; $notenv {x}").unwrap();
        assert!(plain.is_literal());
        assert_eq!(plain.resolve().unwrap(), "text/plain; $notenv {x}");
        assert!(EnvTemplate::parse("${env:OPEN").is_err());
        assert!(EnvTemplate::parse("${env:}").is_err());
        assert!(EnvTemplate::parse("${env:A B}").is_err());
    }
}
