//! sacreBLEU's tokenizers `13a`, `intl`, `char` and `none`, written after its Python source
//! (`sacrebleu/tokenizers/`), so that BLEU reads the same tokens; whitespace is Python's, as
//! sacreBLEU splits and strips with `str.split()` and `str.rstrip()`.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::BleuTokenizer;

/// Whitespace as Python's `str.isspace()` has it: Unicode White_Space and the information
/// separators U+001C to U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The tokens sacreBLEU counts in a text (lower-cased before, when asked): the text without
/// trailing whitespace, tokenized, then split at whitespace.
pub(super) fn tokens(text: &str, tokenizer: BleuTokenizer) -> Vec<String> {
    let line = text.trim_end_matches(is_python_space);
    let split = |tokenized: &str| -> Vec<String> {
        tokenized
            .split(is_python_space)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    };
    match tokenizer {
        BleuTokenizer::Tok13a => split(&tokenize_13a(line)),
        BleuTokenizer::Intl => split(&substitute(line, &INTL)),
        // Every character is a token, whitespace only separates.
        BleuTokenizer::Char => line
            .chars()
            .filter(|c| !is_python_space(*c))
            .map(String::from)
            .collect(),
        BleuTokenizer::None => split(line),
    }
}

/// Substitutions applied in order, each to every match (as Python's `re.sub`).
type Rules = Vec<(Regex, &'static str)>;

fn rules(rules: &[(&str, &'static str)]) -> Rules {
    rules
        .iter()
        .map(|&(pattern, replacement)| (Regex::new(pattern).expect("valid pattern"), replacement))
        .collect()
}

/// `tokenizer_re.py`, which `tokenizer_13a.py` applies after its language-independent part.
static RE_13A: LazyLock<Rules> = LazyLock::new(|| {
    rules(&[
        // Symbols and most ASCII punctuation.
        (r"([\{-~\[-`\x20-&\(-\+:-@/])", " ${1} "),
        // Period and comma unless preceded by a digit.
        (r"([^0-9])([\.,])", "${1} ${2} "),
        // Period and comma unless followed by a digit.
        (r"([\.,])([^0-9])", " ${1} ${2}"),
        // Dash when preceded by a digit.
        (r"([0-9])(-)", "${1} ${2} "),
    ])
});

/// `tokenizer_intl.py`: Unicode punctuation unless between digits, and every symbol.
static INTL: LazyLock<Rules> = LazyLock::new(|| {
    rules(&[
        (r"(\P{N})(\p{P})", "${1} ${2} "),
        (r"(\p{P})(\P{N})", " ${1} ${2}"),
        (r"(\p{S})", " ${1} "),
    ])
});

/// `tokenizer_13a.py`: mteval-v13a's tokenization.
fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    substitute(&format!(" {line} "), &RE_13A)
}

/// `line` with every rule applied in turn.
fn substitute(line: &str, rules: &Rules) -> String {
    rules
        .iter()
        .fold(line.to_string(), |line, (regex, replacement)| {
            regex.replace_all(&line, *replacement).into_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_a_splits_punctuation_but_not_inside_numbers() {
        assert_eq!(
            tokens("The answer is 42.0, not 4,2!", BleuTokenizer::Tok13a),
            ["The", "answer", "is", "42.0", ",", "not", "4,2", "!"]
        );
        assert_eq!(
            tokens("&quot;a&quot; 1-2 x-y\n", BleuTokenizer::Tok13a),
            ["\"", "a", "\"", "1", "-", "2", "x-y"]
        );
    }

    #[test]
    fn intl_splits_unicode_punctuation_and_symbols() {
        assert_eq!(
            tokens("Москва — столица «России»! 1,5 €", BleuTokenizer::Intl),
            [
                "Москва",
                "—",
                "столица",
                "«",
                "России",
                "»",
                "!",
                "1,5",
                "€"
            ]
        );
    }

    #[test]
    fn char_and_none_split_at_python_whitespace() {
        assert_eq!(
            tokens("ab c\u{1c}d", BleuTokenizer::Char),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            tokens("a,b c\u{1c}d ", BleuTokenizer::None),
            ["a,b", "c", "d"]
        );
    }
}
