//! Values that refer to environment variables with `${env:NAME}`, resolved at call time so that
//! secrets never sit in the database or in memory longer than one request.

use crate::domain::Target;

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

/// The environment variables that endpoints and judges may read (`--secret-env`): names, or
/// prefixes ending in `*`. Any other variable of the server's environment stays out of reach of
/// clients, who choose where an endpoint's headers are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretEnv {
    patterns: Vec<String>,
}

/// Default of `--secret-env`.
pub const DEFAULT_SECRET_ENV: &str = "ASSAY_SECRET_*";

impl Default for SecretEnv {
    fn default() -> Self {
        SecretEnv {
            patterns: vec![DEFAULT_SECRET_ENV.to_string()],
        }
    }
}

impl SecretEnv {
    /// The variables matching one of `patterns` (each checked by [`SecretEnv::parse_pattern`]).
    pub fn new(patterns: impl IntoIterator<Item = String>) -> Self {
        SecretEnv {
            patterns: patterns.into_iter().collect(),
        }
    }

    /// This allowlist and the variable `name` too (the operator's own default judge key).
    pub fn and(mut self, name: &str) -> Self {
        self.patterns.push(name.to_string());
        self
    }

    /// Checks one `--secret-env` value: a variable name, or a prefix followed by `*`.
    pub fn parse_pattern(value: &str) -> Result<String, String> {
        let value = value.trim();
        let name = value.strip_suffix('*').unwrap_or(value);
        if !name.chars().all(is_name_char) || (name.is_empty() && value.is_empty()) {
            return Err(format!(
                "{value:?} is neither a variable name nor a prefix ending in * (e.g. ASSAY_SECRET_*)"
            ));
        }
        Ok(value.to_string())
    }

    /// Whether `name` may be read.
    pub fn allows(&self, name: &str) -> bool {
        self.patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            })
    }

    /// `Ok` when `name` may be read; else why not, naming what is allowed.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if self.allows(name) {
            return Ok(());
        }
        Err(format!(
            "environment variable {name:?} is not allowed: the server lets endpoints read only {} \
             (set with --secret-env / ASSAY_SECRET_ENV)",
            if self.patterns.is_empty() {
                "no variable".to_string()
            } else {
                self.patterns.join(", ")
            }
        ))
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'
}

/// Checks every environment variable a target refers to (its headers' `${env:NAME}`, its
/// `api_key_env`) against `allowed`; a malformed reference is refused too. The error names the
/// field below the target (`http.headers.NAME`, `openai_chat.api_key_env`) and why.
pub fn check_target_env(target: &Target, allowed: &SecretEnv) -> Result<(), (String, String)> {
    match target {
        Target::Http(http) => http.headers.iter().try_for_each(|(name, value)| {
            EnvTemplate::parse(value)
                .and_then(|template| template.check(allowed))
                .map_err(|reason| (format!("http.headers.{name}"), reason))
        }),
        Target::OpenAiChat(chat) => check_key_env(chat.api_key_env.as_deref(), allowed)
            .map_err(|reason| ("openai_chat.api_key_env".to_string(), reason)),
    }
}

/// Checks the variable named by an `api_key_env` setting, if any.
pub fn check_key_env(api_key_env: Option<&str>, allowed: &SecretEnv) -> Result<(), String> {
    match api_key_env.map(str::trim).filter(|name| !name.is_empty()) {
        None => Ok(()),
        Some(name) => EnvTemplate::parse(&format!("${{env:{name}}}"))?.check(allowed),
    }
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
            if name.is_empty() || !name.chars().all(is_name_char) {
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

    /// The variables the value refers to.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Env(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// `Ok` when every variable referred to is allowed by `allowed`.
    pub fn check(&self, allowed: &SecretEnv) -> Result<(), String> {
        self.variables().try_for_each(|name| allowed.check(name))
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
        let name = format!("ASSAY_SECRET_ENV_TEST_{}", std::process::id());
        let template = EnvTemplate::parse(&format!("Bearer ${{env:{name}}}!")).unwrap();
        assert!(!template.is_literal());
        assert_eq!(template.resolve(), Err(MissingEnv(name.clone())));
        // SAFETY: the variable name is unique to this test.
        unsafe { std::env::set_var(&name, "s3cret") };
        assert_eq!(template.resolve().unwrap(), "Bearer s3cret!");
        unsafe { std::env::remove_var(&name) };
    }

    #[test]
    fn only_allowed_variables_pass_the_check() {
        let allowed = SecretEnv::default().and("OPENAI_API_KEY");
        assert!(allowed.allows("ASSAY_SECRET_TOKEN"));
        assert!(allowed.allows("OPENAI_API_KEY"));
        assert!(!allowed.allows("OPENAI_API_KEY_2"));
        assert!(!allowed.allows("HOME"));
        let template = EnvTemplate::parse("Bearer ${env:DB_PASSWORD}").unwrap();
        let refused = template.check(&allowed).unwrap_err();
        assert!(
            refused.contains("\"DB_PASSWORD\"") && refused.contains("ASSAY_SECRET_*"),
            "{refused}"
        );
        assert!(SecretEnv::parse_pattern("MY_APP_*").is_ok());
        assert!(SecretEnv::parse_pattern("A B").is_err());
        assert!(SecretEnv::parse_pattern("").is_err());
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
