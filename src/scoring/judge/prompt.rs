//! Rendering what the judge is asked: the user message (the metric's evaluation prompt and steps,
//! followed by the test's data when the prompt does not show the output) and the system message
//! (the judge's role and the reply format).

use super::JudgeInput;
use crate::domain::{LlmJudge, Metric, ScoreType};
use crate::endpoint_client::{
    check_template_output, describe_template_error, template_environment,
};

/// The data shown to the judge, appended to evaluation prompts that do not show the output.
const DATA_TEMPLATE: &str = "\
Question:
{{ prompt }}
{% if expected_given %}
Expected answer:
{{ expected_response if expected_response else '(an empty answer)' }}
{% endif %}{% if context %}
Context:
{% for passage in context %}- {{ passage }}
{% endfor %}{% endif %}
Answer to evaluate:
{{ output }}
";

/// The evaluation instructions when the metric gives none.
const DEFAULT_INSTRUCTIONS: &str = "\
Evaluate the answer to the question below. Judge whether it is correct, complete and relevant\
{% if expected_given %}, comparing it with the expected answer{% endif %}\
{% if context %}, and whether it is supported by the context{% endif %}.
";

/// The user message: the evaluation prompt rendered and the evaluation steps, followed by the
/// test's data when the prompt does not show the output itself.
pub(super) fn render_prompt(
    evaluation_prompt: &str,
    steps: &[String],
    input: &JudgeInput<'_>,
) -> Result<String, String> {
    let env = template_environment();
    let ctx = minijinja::context! {
        prompt => input.prompt,
        expected_response => input.expected_response.unwrap_or(""),
        context => input.context.to_vec(),
        output => input.output,
    };
    // The built-in templates also know whether there is an expected response at all, so that an
    // expected "" (the answer must be empty) is shown as one.
    let builtin = minijinja::context! {
        expected_given => input.expected_response.is_some(),
        ..ctx.clone()
    };
    let render = |source: &str, ctx: &minijinja::Value| -> Result<(String, bool), String> {
        let template = env
            .template_from_str(source)
            .map_err(|e| format!("evaluation prompt: {}", describe_template_error(&e)))?;
        let shows_output = template.undeclared_variables(false).contains("output");
        let text = template
            .render(ctx)
            .map_err(|e| format!("evaluation prompt: {}", describe_template_error(&e)))?;
        check_template_output(&text).map_err(|e| format!("evaluation prompt: {e}"))?;
        Ok((text, shows_output))
    };
    let (mut instructions, shows_output) = if evaluation_prompt.trim().is_empty() {
        (render(DEFAULT_INSTRUCTIONS, &builtin)?.0, false)
    } else {
        render(evaluation_prompt, &ctx)?
    };
    if !steps.is_empty() {
        instructions = format!("{}\n\nEvaluation steps:", instructions.trim_end());
        for (i, step) in steps.iter().enumerate() {
            instructions.push_str(&format!("\n{}. {}", i + 1, step.trim()));
        }
    }
    if shows_output {
        return Ok(instructions);
    }
    let (data, _) = render(DATA_TEMPLATE, &builtin)?;
    Ok(format!("{}\n\n{data}", instructions.trim_end()))
}

/// The system message: role and reply format.
pub(super) fn instructions(judge: &LlmJudge, metric: &Metric) -> String {
    let mut text = String::from(
        "You are a strict and impartial evaluator of answers given by an AI system. \
         Evaluate the answer as the user's instructions say.",
    );
    if !metric.description.trim().is_empty() {
        text.push_str(&format!(
            " The metric is {:?}: {}",
            metric.name,
            metric.description.trim()
        ));
    }
    text.push_str("\n\nReply with one JSON object and nothing else: ");
    match metric.score_type {
        ScoreType::Numeric => text.push_str(&format!(
            "{{\"score\": <a number from {min} (worst) to {max} (best)>, \
             \"reason\": \"<one or two sentences explaining the score>\"}}",
            min = judge.min_score,
            max = judge.max_score
        )),
        ScoreType::Binary => text.push_str(
            "{\"score\": <true if the answer passes, false if it fails>, \
             \"reason\": \"<one or two sentences explaining the verdict>\"}",
        ),
        ScoreType::Categorical => {
            let categories = metric
                .categories
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            text.push_str(&format!(
                "{{\"category\": \"<exactly one of: {categories}>\", \
                 \"reason\": \"<one or two sentences explaining the choice>\"}}"
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::judge::JudgeInput;
    use crate::scoring::judge::tests::input;

    #[test]
    fn evaluation_prompts_render_and_show_the_output() {
        let context = vec!["c1".to_string()];
        let custom = render_prompt(
            "Rate {{ output }} against {{ expected_response }} given {{ context | join(', ') }}.",
            &[],
            &input(&context),
        )
        .unwrap();
        assert_eq!(
            custom,
            "Rate The capital is \"Paris\". against Paris given c1."
        );
        let criteria = render_prompt("Is the answer polite?", &[], &input(&context)).unwrap();
        assert!(
            criteria.starts_with("Is the answer polite?\n\nQuestion:\n"),
            "{criteria}"
        );
        assert!(
            criteria.contains("Answer to evaluate:\nThe capital is \"Paris\"."),
            "{criteria}"
        );
        let err = render_prompt("{% if %}", &[], &input(&context)).unwrap_err();
        assert!(err.starts_with("evaluation prompt: "), "{err}");
    }

    #[test]
    fn an_empty_expected_response_is_shown_to_the_judge_and_none_is_not() {
        let empty = JudgeInput {
            expected_response: Some(""),
            ..input(&[])
        };
        let text = render_prompt("", &[], &empty).unwrap();
        assert!(
            text.contains("comparing it with the expected answer"),
            "{text}"
        );
        assert!(
            text.contains("Expected answer:\n(an empty answer)\n"),
            "{text}"
        );
        let none = JudgeInput {
            expected_response: None,
            ..input(&[])
        };
        let text = render_prompt("", &[], &none).unwrap();
        assert!(!text.contains("expected answer"), "{text}");
        assert!(!text.contains("Expected answer"), "{text}");
    }

    #[test]
    fn evaluation_steps_are_a_numbered_list_before_the_data() {
        let steps = [
            "Check the city.".to_string(),
            " Check the tone. ".to_string(),
        ];
        let text = render_prompt("Is it right?", &steps, &input(&[])).unwrap();
        assert!(
            text.starts_with(
                "Is it right?\n\nEvaluation steps:\n1. Check the city.\n2. Check the tone.\n\nQuestion:\n"
            ),
            "{text}"
        );
    }
}
