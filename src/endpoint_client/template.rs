//! Body templates: a JSON document whose string values are minijinja templates.
//!
//! A string that is exactly one placeholder (`"{{ expr }}"`) takes the expression's value itself,
//! so a prompt with quotes or newlines stays one proper JSON string and a number stays a number.
//! Any other string containing template syntax is rendered as text. Object keys stay literal.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::domain::{DEFAULT_BODY_TEMPLATE, TemplateSyntax};

/// Name of the variable a single-placeholder template stores its value in.
const VALUE_SLOT: &str = "__assay_value";

/// A parsed, precompiled body template; cheap to render once per call.
pub struct BodyTemplate {
    env: Environment<'static>,
    root: Node,
    /// Whether any node is rendered by minijinja (else no template context is built).
    uses_minijinja: bool,
}

impl std::fmt::Debug for BodyTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyTemplate").finish_non_exhaustive()
    }
}

/// One node of the template's JSON tree.
enum Node {
    /// A JSON value without templates (numbers, booleans, null, plain strings).
    Literal(serde_json::Value),
    /// A string that is exactly one placeholder: the template named so stores the value.
    Value(String),
    /// A string that is exactly one placeholder naming a text variable, e.g. `{{ prompt }}`
    /// (the usual body): its value is taken without rendering, once per call on the hot path.
    Field(Field),
    /// A string rendered as text by the template named so.
    Text(String),
    /// An array.
    Array(Vec<Node>),
    /// An object; keys are literal.
    Object(Vec<(String, Node)>),
}

/// A text variable of [`TemplateVars`].
#[derive(Clone, Copy)]
enum Field {
    Prompt,
    ExpectedResponse,
    Category,
    Topic,
}

impl Field {
    fn named(expression: &str) -> Option<Field> {
        Some(match expression {
            "prompt" => Field::Prompt,
            "expected_response" => Field::ExpectedResponse,
            "category" => Field::Category,
            "topic" => Field::Topic,
            _ => return None,
        })
    }

    fn of<'a>(self, vars: &TemplateVars<'a>) -> &'a str {
        match self {
            Field::Prompt => vars.prompt,
            Field::ExpectedResponse => vars.expected_response,
            Field::Category => vars.category,
            Field::Topic => vars.topic,
        }
    }
}

/// The variables a body template sees for one test.
pub struct TemplateVars<'a> {
    /// The test's prompt.
    pub prompt: &'a str,
    /// The expected response, empty when none.
    pub expected_response: &'a str,
    /// The test's category.
    pub category: &'a str,
    /// The test's topic.
    pub topic: &'a str,
    /// The test's metadata.
    pub metadata: &'a BTreeMap<String, String>,
    /// The run's parameters, converted once per run by [`json_to_value`].
    pub parameters: &'a Value,
}

/// What one render of a template (a string of a body template, a judge's prompt) may cost, so
/// that no template can hang a worker or fill the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateLimits {
    /// minijinja fuel: about one unit per instruction, or per 64 bytes allocated or written.
    pub fuel: u64,
    /// Largest text one render may produce, in bytes.
    pub max_output_bytes: usize,
}

/// Default of `--template-fuel`: a few milliseconds of work, at most about 64 MB allocated.
pub const DEFAULT_TEMPLATE_FUEL: u64 = 1_000_000;
/// Default of `--max-template-output-bytes`: 4 MiB.
pub const DEFAULT_MAX_TEMPLATE_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

impl Default for TemplateLimits {
    fn default() -> Self {
        TemplateLimits {
            fuel: DEFAULT_TEMPLATE_FUEL,
            max_output_bytes: DEFAULT_MAX_TEMPLATE_OUTPUT_BYTES,
        }
    }
}

/// The limits of the process: set once, when the server starts (templates are compiled in many
/// places, far from the configuration; one process serves one configuration).
static LIMITS: OnceLock<TemplateLimits> = OnceLock::new();

/// Sets the template limits of this process; only the first call has an effect (it says whether
/// it was the first).
pub fn set_template_limits(limits: TemplateLimits) -> bool {
    LIMITS.set(limits).is_ok()
}

/// The template limits of this process.
pub fn template_limits() -> TemplateLimits {
    *LIMITS.get_or_init(TemplateLimits::default)
}

/// Refuses a rendered text larger than the output limit.
pub(crate) fn check_output(text: &str) -> Result<(), String> {
    let max = template_limits().max_output_bytes;
    if text.len() > max {
        return Err(format!(
            "the template rendered more than {max} bytes, the limit \
             (--max-template-output-bytes, ASSAY_MAX_TEMPLATE_OUTPUT_BYTES)"
        ));
    }
    Ok(())
}

/// Runs `render`, a template render that may take as long as its fuel allows (seconds, with a
/// large `--template-fuel`), where it cannot stall the runtime: on a multi-threaded runtime its
/// worker hands its other tasks (the signal handler, the streams, the shutdown) to the others
/// first, so SIGTERM is served whatever renders are going on.
pub(crate) fn rendering<T>(render: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(render)
        }
        _ => render(),
    }
}

/// Checks that `source` compiles as a template (e.g. a judge's evaluation prompt), so that a
/// syntax error is refused when the resource is created rather than failing every call.
pub fn check_template_syntax(source: &str) -> Result<(), String> {
    template_environment()
        .template_from_str(source)
        .map(drop)
        .map_err(|e| describe(&e))
}

/// A minijinja environment as Assay's templates use it: no auto-escaping, trailing newlines kept,
/// undefined values lenient (tests differ in their metadata keys: a missing `metadata.x` prints as
/// nothing), and the process's fuel per render. Typos in variable names are caught when the
/// template is parsed instead.
pub(crate) fn template_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(template_limits().fuel));
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// [`TemplateSyntax`] by [`BodyTemplate::parse`], for validating endpoints.
#[derive(Clone, Copy, Debug, Default)]
pub struct BodyTemplateSyntax;

impl TemplateSyntax for BodyTemplateSyntax {
    fn check_body_template(&self, template: &str) -> Result<(), String> {
        BodyTemplate::parse(template).map(drop)
    }
}

impl BodyTemplate {
    /// Parses a body template; an empty one is [`DEFAULT_BODY_TEMPLATE`]. Invalid JSON and
    /// templates that do not compile are rejected with a message saying where.
    pub fn parse(template: &str) -> Result<BodyTemplate, String> {
        let source = if template.trim().is_empty() {
            DEFAULT_BODY_TEMPLATE
        } else {
            template
        };
        let json: serde_json::Value = serde_json::from_str(source)
            .map_err(|e| format!("the body template is not valid JSON: {e}"))?;
        let mut env = template_environment();
        let root = compile(&mut env, json, "$".to_string())?;
        let uses_minijinja = env.templates().next().is_some();
        Ok(BodyTemplate {
            env,
            root,
            uses_minijinja,
        })
    }

    /// Renders the body for one test.
    pub fn render(&self, vars: &TemplateVars<'_>) -> Result<serde_json::Value, String> {
        let ctx = if self.uses_minijinja {
            minijinja::context! {
                prompt => vars.prompt,
                expected_response => vars.expected_response,
                category => vars.category,
                topic => vars.topic,
                metadata => Value::from(vars.metadata.clone()),
                parameters => vars.parameters.clone(),
            }
        } else {
            Value::UNDEFINED
        };
        self.render_node(&self.root, vars, &ctx)
    }

    /// [`render`](Self::render) on the runtime: through [`rendering`] when minijinja renders
    /// some of the body, which may take as long as its fuel allows. A body of literals and fields
    /// only copies them, in no time; moving the worker's tasks to another thread for it (a
    /// thread handoff per call, and a pool of threads kept alive by a fast endpoint: 170 threads
    /// and twice the memory, see BENCHMARKS.md) cost far more than the render.
    pub(crate) fn render_on_runtime(
        &self,
        vars: &TemplateVars<'_>,
    ) -> Result<serde_json::Value, String> {
        if self.uses_minijinja {
            rendering(|| self.render(vars))
        } else {
            self.render(vars)
        }
    }

    fn render_node(
        &self,
        node: &Node,
        vars: &TemplateVars<'_>,
        ctx: &Value,
    ) -> Result<serde_json::Value, String> {
        Ok(match node {
            Node::Literal(value) => value.clone(),
            Node::Field(field) => serde_json::Value::String(field.of(vars).to_owned()),
            Node::Text(name) => {
                let template = self.env.get_template(name).map_err(|e| e.to_string())?;
                let text = template
                    .render(ctx)
                    .map_err(|e| format!("at {name}: {}", describe(&e)))?;
                check_output(&text).map_err(|e| format!("at {name}: {e}"))?;
                serde_json::Value::String(text)
            }
            Node::Value(name) => {
                let template = self.env.get_template(name).map_err(|e| e.to_string())?;
                let captured = template
                    .render_captured(ctx)
                    .map_err(|e| format!("at {name}: {}", describe(&e)))?;
                let value = captured
                    .state()
                    .lookup(VALUE_SLOT)
                    .unwrap_or(Value::UNDEFINED);
                if value.is_undefined() {
                    return Ok(serde_json::Value::Null);
                }
                let expression = expression_of(template.source());
                let json =
                    value_to_json(&value).map_err(|e| format!("at {name}: {expression}: {e}"))?;
                // A value is bounded as text is: `{{ prompt * 100000 }}` alone makes one too.
                match &json {
                    serde_json::Value::String(text) => check_output(text),
                    other => check_output(&other.to_string()),
                }
                .map_err(|e| format!("at {name}: {e}"))?;
                json
            }
            Node::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|item| self.render_node(item, vars, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Object(fields) => {
                let mut map = serde_json::Map::new();
                for (key, item) in fields {
                    map.insert(key.clone(), self.render_node(item, vars, ctx)?);
                }
                serde_json::Value::Object(map)
            }
        })
    }
}

/// The message of a minijinja error, with its detail when it has one, and the limit that was hit
/// when the template ran out of fuel. At most [`MAX_ERROR_CHARS`] characters: a detail may quote
/// a long input.
pub(crate) fn describe(error: &minijinja::Error) -> String {
    if error.kind() == minijinja::ErrorKind::OutOfFuel {
        return format!(
            "the template did more work than allowed (--template-fuel, ASSAY_TEMPLATE_FUEL: {})",
            template_limits().fuel
        );
    }
    let text = match error.detail() {
        Some(detail) if !error.to_string().contains(detail) => format!("{error}: {detail}"),
        _ => error.to_string(),
    };
    crate::domain::truncated(&text, MAX_ERROR_CHARS)
}

/// Longest template error message kept.
const MAX_ERROR_CHARS: usize = 300;

/// The variables a body template may use.
const VARIABLES: [&str; 6] = [
    "prompt",
    "expected_response",
    "category",
    "topic",
    "metadata",
    "parameters",
];

/// Rejects a template that uses a variable Assay does not provide (a typo such as `promt` would
/// otherwise send an empty value to every call).
fn check_variables(env: &Environment<'static>, path: &str) -> Result<(), String> {
    let template = env.get_template(path).map_err(|e| e.to_string())?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !VARIABLES.contains(&name.as_str()))
        .collect();
    unknown.sort();
    match unknown.first() {
        None => Ok(()),
        Some(name) => Err(format!(
            "at {path}: unknown variable `{name}`; templates can use {}",
            VARIABLES.join(", ")
        )),
    }
}

fn compile(
    env: &mut Environment<'static>,
    json: serde_json::Value,
    path: String,
) -> Result<Node, String> {
    Ok(match json {
        serde_json::Value::String(text) => {
            if let Some(field) = single_placeholder(&text).and_then(Field::named) {
                Node::Field(field)
            } else if let Some(expression) = single_placeholder(&text) {
                env.compile_expression(expression).map_err(|e| {
                    format!(
                        "at {path}: {:?} is not a valid expression: {}",
                        text,
                        describe(&e)
                    )
                })?;
                let source = format!("{{% set {VALUE_SLOT} = ({expression}) %}}");
                env.add_template_owned(path.clone(), source).map_err(|e| {
                    format!(
                        "at {path}: {:?} is not a valid expression: {}",
                        text,
                        describe(&e)
                    )
                })?;
                check_variables(env, &path)?;
                Node::Value(path)
            } else if has_template_syntax(&text) {
                env.add_template_owned(path.clone(), text.clone())
                    .map_err(|e| {
                        format!(
                            "at {path}: {text:?} is not a valid template: {}",
                            describe(&e)
                        )
                    })?;
                check_variables(env, &path)?;
                Node::Text(path)
            } else {
                Node::Literal(serde_json::Value::String(text))
            }
        }
        serde_json::Value::Array(items) => Node::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| compile(env, item, format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(fields) => Node::Object(
            fields
                .into_iter()
                .map(|(key, item)| {
                    let child = format!("{path}.{key}");
                    compile(env, item, child).map(|node| (key, node))
                })
                .collect::<Result<_, _>>()?,
        ),
        other => Node::Literal(other),
    })
}

/// The expression of a string that is exactly one `{{ ... }}` placeholder (whitespace around it
/// and whitespace-control markers allowed).
fn single_placeholder(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    let inner = inner.trim();
    if inner.is_empty() || inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    Some(inner)
}

/// The expression inside a single-placeholder template source.
fn expression_of(source: &str) -> &str {
    source
        .strip_prefix(&format!("{{% set {VALUE_SLOT} = ("))
        .and_then(|s| s.strip_suffix(") %}"))
        .unwrap_or(source)
}

fn has_template_syntax(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Converts JSON to a template value.
pub(crate) fn json_to_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(json_to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// Converts a template value to JSON; an undefined value is an error.
pub(crate) fn value_to_json(value: &Value) -> Result<serde_json::Value, String> {
    Ok(match value.kind() {
        ValueKind::Undefined => return Err("is undefined".to_string()),
        ValueKind::None => serde_json::Value::Null,
        ValueKind::Bool => serde_json::Value::Bool(value.is_true()),
        ValueKind::Number => number_to_json(value)?,
        ValueKind::String => serde_json::Value::String(value.as_str().unwrap_or_default().into()),
        ValueKind::Bytes => serde_json::Value::String(
            String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned(),
        ),
        ValueKind::Seq | ValueKind::Iterable => serde_json::Value::Array(
            value
                .try_iter()
                .map_err(|e| e.to_string())?
                .map(|item| value_to_json(&item))
                .collect::<Result<_, _>>()?,
        ),
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            for key in value.try_iter().map_err(|e| e.to_string())? {
                let item = value.get_item(&key).map_err(|e| e.to_string())?;
                let key = match key.as_str() {
                    Some(s) => s.to_string(),
                    None => key.to_string(),
                };
                map.insert(key, value_to_json(&item)?);
            }
            serde_json::Value::Object(map)
        }
        _ => serde_json::Value::String(value.to_string()),
    })
}

fn number_to_json(value: &Value) -> Result<serde_json::Value, String> {
    if value.is_integer() {
        if let Ok(i) = i64::try_from(value.clone()) {
            return Ok(i.into());
        }
        if let Ok(u) = u64::try_from(value.clone()) {
            return Ok(u.into());
        }
    }
    let f = f64::try_from(value.clone()).map_err(|e| e.to_string())?;
    serde_json::Number::from_f64(f)
        .map(serde_json::Value::Number)
        .ok_or_else(|| format!("{f} is not a JSON number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(
        template: &str,
        prompt: &str,
        parameters: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let metadata = BTreeMap::from([
            ("lang".to_string(), "de".to_string()),
            ("user".to_string(), "u-1".to_string()),
        ]);
        let parameters = json_to_value(&parameters);
        BodyTemplate::parse(template)?.render(&TemplateVars {
            prompt,
            expected_response: "",
            category: "cat",
            topic: "top",
            metadata: &metadata,
            parameters: &parameters,
        })
    }

    #[test]
    fn awkward_prompts_stay_exact_json_strings() {
        let prompt = "He said \"hi\"\nthen \\ left\t{{ not a template }} — ünïcödé 🎉 </script>";
        let body = render("", prompt, json!({})).unwrap();
        assert_eq!(body, json!({ "prompt": prompt }));
        let text = serde_json::to_string(&body).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["prompt"], prompt);
    }

    #[test]
    fn single_placeholders_keep_their_type() {
        let body = render(
            r#"{"t": "{{ parameters.temperature }}", "n": "{{parameters.n}}", "meta": "{{ metadata }}",
                "flag": "{{- parameters.stream -}}", "opts": "{{ parameters.opts }}", "none": "{{ parameters.nothing }}",
                "fixed": 3, "list": ["{{ prompt }}", true]}"#,
            "q",
            json!({"temperature": 0.2, "n": 3, "stream": false, "opts": {"a": [1, "x"]}, "nothing": null}),
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"t": 0.2, "n": 3, "meta": {"lang": "de", "user": "u-1"}, "flag": false,
                   "opts": {"a": [1, "x"]}, "none": null, "fixed": 3, "list": ["q", true]})
        );
    }

    #[test]
    fn text_variables_taken_directly_equal_their_rendered_value() {
        let prompt = "He said \"hi\"\n{{ x }} ünï 🎉";
        // `(prompt)` is not a plain name, so it goes through minijinja.
        let body = render(
            r#"{"direct": ["{{ prompt }}", "{{category}}", "{{- topic -}}", "{{ expected_response }}"],
                "rendered": ["{{ (prompt) }}", "{{ (category) }}", "{{ (topic) }}", "{{ (expected_response) }}"]}"#,
            prompt,
            json!({}),
        )
        .unwrap();
        assert_eq!(body["direct"], json!([prompt, "cat", "top", ""]));
        assert_eq!(body["direct"], body["rendered"]);
    }

    #[test]
    fn mixed_strings_render_as_text_without_escaping() {
        let body = render(
            r#"{"input": "Question: {{ prompt }} ({{ category }}/{{ topic }}, {{ metadata.lang }}) <b>&</b>\n",
                "{{ keys stay }}": "plain", "t": "{{ parameters.temperature }} degrees",
                "opt": "{% if metadata.missing %}yes{% else %}no{% endif %}{{ metadata.missing | default('-') }}"}"#,
            "a < b & \"c\"",
            json!({"temperature": 0.5}),
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"input": "Question: a < b & \"c\" (cat/top, de) <b>&</b>\n",
                   "{{ keys stay }}": "plain", "t": "0.5 degrees", "opt": "no-"})
        );
    }

    #[test]
    fn invalid_json_and_templates_are_rejected() {
        let err = BodyTemplate::parse(r#"{"prompt": "{{ prompt }}""#).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = BodyTemplate::parse(r#"{"a": {"b": ["{{ prompt + }}"]}}"#).unwrap_err();
        assert!(err.contains("$.a.b[0]"), "{err}");
        let err = BodyTemplate::parse(r#"{"a": "x {% if prompt %} y"}"#).unwrap_err();
        assert!(err.contains("not a valid template"), "{err}");
        let err = BodyTemplate::parse(r#"{"a": "{{ prompt ) %}{% set x = (1 }}"}"#).unwrap_err();
        assert!(err.contains("$.a"), "{err}");
    }

    #[test]
    fn missing_keys_render_as_null_or_nothing() {
        let body = render(
            r#"{"t": "{{ parameters.temperature }}", "m": "x{{ metadata.nope }}y"}"#,
            "q",
            json!({}),
        )
        .unwrap();
        assert_eq!(body, json!({"t": null, "m": "xy"}));
    }

    #[test]
    fn unknown_variables_are_rejected_when_parsed() {
        let err = BodyTemplate::parse(r#"{"a": "{{ promt }}"}"#).unwrap_err();
        assert!(err.contains("$.a") && err.contains("`promt`"), "{err}");
        let err = BodyTemplate::parse(r#"{"a": "say {{ question }}"}"#).unwrap_err();
        assert!(err.contains("`question`"), "{err}");
        BodyTemplate::parse(r#"{"a": "{% for k in metadata %}{{ k }}{% endfor %}"}"#).unwrap();
    }

    #[test]
    fn a_placeholder_alone_is_bounded_like_text() {
        // 80 bytes repeated 100,000 times: 8 MB, within the fuel but over the 4 MiB output.
        let err = render(
            r#"{"a": "{{ prompt * 100000 }}"}"#,
            &"🎉".repeat(20),
            json!({}),
        )
        .unwrap_err();
        assert!(err.contains("ASSAY_MAX_TEMPLATE_OUTPUT_BYTES"), "{err}");
    }

    /// Pieces of templates: sound ones, heavy ones, and broken halves.
    const PIECES: &[&str] = &[
        "{{ prompt }}",
        "{{ prompt|upper }}",
        "{{ prompt * 100000 }}",
        "{{ (prompt * 100000)|length }}",
        "{% for c in prompt * 1000 %}",
        "{% for k in metadata %}{{ k }}",
        "{% endfor %}",
        "{% if parameters.x %}",
        "{% else %}",
        "{% endif %}",
        "{% set v = prompt ~ topic %}{{ v }}",
        "{{ metadata.lang }}",
        "{{ parameters }}",
        "{{ expected_response[0] }}",
        "{{ 1 / 0 }}",
        "{{ category|replace('c', prompt * 1000) }}",
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "x",
        "\"",
        "\\",
    ];

    /// A template: pieces in any order, or any text.
    fn template() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            3 => prop::collection::vec(prop::sample::select(PIECES), 0..10)
                .prop_map(|pieces| pieces.concat()),
            1 => ".{0,40}",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any template string, in a body template or as one, with any prompt: it parses and
        /// renders or fails with a message, within its fuel (so in bounded time) and output
        /// limit, and never panics.
        #[test]
        fn any_template_renders_or_fails_within_its_limits(
            text in template(),
            prompt in proptest::prop_oneof![
                proptest::strategy::Strategy::boxed(".{0,20}"),
                proptest::strategy::Strategy::boxed(proptest::strategy::Just("🎉".repeat(20))),
            ],
            whole in proptest::prelude::any::<bool>(),
        ) {
            let body = if whole {
                text.clone()
            } else {
                json!({ "a": text, "b": [text.clone()] }).to_string()
            };
            if let Ok(rendered) = render(&body, &prompt, json!({ "x": prompt })) {
                let longest = longest_string(&rendered);
                proptest::prop_assert!(longest <= DEFAULT_MAX_TEMPLATE_OUTPUT_BYTES, "{longest}");
            }
        }
    }

    /// The length of the longest string in a JSON value.
    fn longest_string(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::String(text) => text.len(),
            serde_json::Value::Array(items) => items.iter().map(longest_string).max().unwrap_or(0),
            serde_json::Value::Object(map) => map.values().map(longest_string).max().unwrap_or(0),
            _ => 0,
        }
    }
}
