#!/usr/bin/env python3
"""Writes tests/data/similarity-fixtures.json: pairs of texts with the scores the reference
libraries give them, which a Rust test (src/scoring/similarity/fixtures.rs) checks every
similarity metric against, to 1e-9, without Python.

    python3 -m venv .venv-fixtures
    .venv-fixtures/bin/pip install -r scripts/metric-fixtures/requirements.txt
    .venv-fixtures/bin/python scripts/metric-fixtures/generate.py

The references:
- bleu: sacrebleu.sentence_bleu(output, [reference], lowercase=..., tokenize=...) / 100, for every
  tokenizer (13a, intl, char, none) with and without lowercase; everything else is
  sentence_bleu's default (exp smoothing, effective order, max n-gram order 4).
- rouge_l: rouge_score's rougeL F-measure (no stemmer). On ASCII text with its default tokenizer;
  when either text is not ASCII with Assay's Unicode words (`unicode_words` below), which on
  ASCII text are exactly the default tokenizer's tokens. Two texts without any word score 1 when
  their NFC forms are equal, else 0 (rouge_score gives 0).
- levenshtein: rapidfuzz.distance.Levenshtein.normalized_similarity, of the texts lower-cased
  (ignore_case) and/or NFC-normalised (nfc), in that order.
"""

import json
import unicodedata
from importlib.metadata import version
from pathlib import Path

import sacrebleu
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "similarity-fixtures.json"

TOKENIZERS = ["13a", "intl", "char", "none"]


def unicode_words(text):
    """Assay's ROUGE-L words: the text lower-cased and NFC-normalised, split into maximal runs of
    letters, marks and numbers (Unicode general categories L*, M*, N*)."""
    words, current = [], []
    for c in unicodedata.normalize("NFC", text.lower()):
        if unicodedata.category(c)[0] in "LMN":
            current.append(c)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


class UnicodeWords:
    def tokenize(self, text):
        return unicode_words(text)


ROUGE_ASCII = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
ROUGE_UNICODE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=UnicodeWords())


def rouge_l(output, reference):
    if not unicode_words(output) and not unicode_words(reference):
        same = unicodedata.normalize("NFC", output) == unicodedata.normalize("NFC", reference)
        return 1.0 if same else 0.0
    scorer = ROUGE_ASCII if (output + reference).isascii() else ROUGE_UNICODE
    return float(scorer.score(reference, output)["rougeL"].fmeasure)


def levenshtein(output, reference, ignore_case, nfc):
    def prepare(text):
        if ignore_case:
            text = text.lower()
        if nfc:
            text = unicodedata.normalize("NFC", text)
        return text

    return Levenshtein.normalized_similarity(prepare(output), prepare(reference))


def scores(output, reference):
    result = []
    for ignore_case in (False, True):
        for nfc in (False, True):
            result.append({
                "measure": "levenshtein",
                "options": {"ignore_case": ignore_case, "nfc": nfc},
                "score": levenshtein(output, reference, ignore_case, nfc),
            })
    result.append({"measure": "rouge_l", "options": {}, "score": rouge_l(output, reference)})
    for tokenize in TOKENIZERS:
        for lowercase in (False, True):
            bleu = sacrebleu.sentence_bleu(
                output, [reference], lowercase=lowercase, tokenize=tokenize
            )
            result.append({
                "measure": "bleu",
                "options": {"lowercase": lowercase, "tokenize": tokenize},
                "score": bleu.score / 100,
            })
    return result


def nfd(text):
    return unicodedata.normalize("NFD", text)


# Pairs written out: (output, reference).
PAIRS = [
    # The examples.
    ("The answer is 42.", "The answer is 42.0"),
    ("The answer is 42.0", "The answer is 42."),
    ("🇯🇵", "🇯🇵🇯🇵"),
    ("❤️", "❤"),
    ("café crème", nfd("café crème")),
    # ASCII.
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the cat is on the mat", "there is a cat on the mat"),
    ("hello world", "foo bar baz"),
    ("Paris", "Paris is the capital of France"),
    ("the the the the the the the", "the cat is on the mat"),
    ("It is a guide to action which ensures that the military always obeys the commands of the party",
     "It is a guide to action that ensures that the military will forever heed Party commands"),
    ("the quick brown fox jumps over the lazy dog today", "the quick brown fox"),
    ("The answer is 42.", "42 is the answer"),
    ("Hello, world! How are you?", "hello world how are you"),
    ("don't can't won't", "do not cannot will not"),
    ("(parenthesised) [brackets] {braces}", "parenthesised brackets braces"),
    ("$100 + 50% = ?", "$100 + 50% = 150"),
    ("C++ and C# are languages.", "C++ and C# are programming languages."),
    ("e-mail: john.doe@example.com", "email: john.doe@example.com"),
    ("see https://example.com/a?b=c&d=e", "see https://example.com/a?b=c"),
    ("3.14159 is pi, 1,000 is a thousand.", "3.14 is pi, 1000 is a thousand."),
    ("It costs 1,000.50 dollars", "It costs 1000.50 dollars"),
    ("Meet me on 2024-01-01 at 10:30.", "Meet me on 2024-01-02 at 10:30."),
    ("x-ray 10-20 well-known", "x ray 10 - 20 well known"),
    ("&amp; &lt;tag&gt; &quot;q&quot;", "& <tag> \"q\""),
    ("a <skipped> b", "a b"),
    ("line one-\nline two\nthree", "line oneline two three"),
    ("tab\tseparated\tvalues", "tab separated values"),
    ("Hello, World!!!", "Hello, World!"),
    ("Wait... what?!", "Wait - what?"),
    ("'single' \"double\" `back`", "single double back"),
    ("under_score and hyphen-ated", "under score and hyphen ated"),
    ("1st 2nd 3rd 4th", "first second third fourth"),
    ("A.B.C. D.E.F.", "ABC DEF"),
    ("no. 5, no. 6.", "No 5 no 6"),
    ("Mr. Smith went to Washington.", "Mr Smith went to Washington"),
    ("version 1.2.3-beta", "version 1.2.3"),
    ("100%", "100 %"),
    ("a,b,c", "a, b, c"),
    ("end.", "end"),
    ("42", "42.0"),
    ("42.", "42"),
    ("-5 degrees", "minus 5 degrees"),
    ("1-2", "1 - 2"),
    ("a b c d e", "a b c d e"),
    ("x y", "a b c d e"),
    ("one two three four five six", "one two three four five"),
    ("one two three", "three two one"),
    ("word", "word"),
    ("word", "Word"),
    # Case.
    ("PARIS", "paris"),
    ("Hello World", "hello world"),
    ("THE QUICK BROWN FOX", "the quick brown fox"),
    ("iPhone and MacBook", "IPHONE AND MACBOOK"),
    ("Straße", "STRASSE"),
    ("ΟΔΟΣ", "οδος"),
    ("İstanbul", "istanbul"),
    ("ǅungla", "ǆungla"),
    # Scripts.
    ("我爱北京天安门。", "我爱北京天安门"),
    ("東京は日本の首都です。", "東京は日本の首都である。"),
    ("서울은 한국의 수도입니다.", "서울은 대한민국의 수도입니다."),
    ("القاهرة هي عاصمة مصر.", "القاهرة عاصمة مصر"),
    ("Москва — столица России.", "Москва столица России"),
    ("МОСКВА", "москва"),
    ("नई दिल्ली भारत की राजधानी है।", "नई दिल्ली भारत की राजधानी है"),
    ("हिन्दी", "हिंदी"),
    ("Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.", "Αθήνα είναι η πρωτεύουσα της Ελλάδας"),
    ("กรุงเทพมหานคร", "กรุงเทพ"),
    ("ירושלים היא בירת ישראל", "ירושלים בירת ישראל"),
    ("Hà Nội là thủ đô của Việt Nam.", "Hà Nội là thủ đô Việt Nam"),
    ("Zürich ist schön", "Zurich ist schon"),
    ("日本語とEnglishの混在 text", "日本語と English の混在 text"),
    ("数字123と4.5", "数字 123 と 4.5"),
    ("١٢٣ عربي", "123 عربي"),
    ("Ⅻ Ⅳ ½ ²", "XII IV 1/2 2"),
    # Emoji.
    ("👨‍👩‍👧‍👦 family", "👨‍👩‍👧 family"),
    ("I ❤️ NY", "I ❤ NY"),
    ("👍🏽", "👍"),
    ("🎉🎉 party", "🎉 party"),
    ("🇫🇷🇩🇪", "🇩🇪🇫🇷"),
    ("✌️", "✌︎"),
    ("😀", "😀"),
    ("😀", "😃"),
    ("Great job 👍", "Great job"),
    ("🏳️‍🌈 pride", "🏳 pride"),
    ("#️⃣ 1️⃣", "# 1"),
    # Combining marks, NFC and NFD.
    (nfd("Ångström"), "Ångström"),
    ("e\u0301", "é"),
    (nfd("Hà Nội"), "Hà Nội"),
    (nfd("한국어"), "한국어"),
    (nfd("naïve café résumé"), "naive cafe resume"),
    ("a\u0308\u0301", "ä\u0301"),
    ("\u0301", "\u0301"),
    (nfd("ÉCOLE"), "école"),
    ("q\u0307\u0323", "q\u0323\u0307"),
    # Empty and whitespace-only.
    ("", ""),
    ("", " "),
    (" ", " "),
    ("\t\n", " "),
    ("hello", ""),
    ("", "hello"),
    ("   hello   ", "hello"),
    ("\u00a0", " "),
    ("\u3000", ""),
    ("a\x1cb", "a b"),
    ("a\u2003b", "a b"),
    ("a\u200bb", "ab"),
    ("?!", "..."),
    ("...", "..."),
    ("🙂", ""),
    ("", "🙂"),
    ("\n\n", "\n"),
]

# Texts varied systematically: each with itself, in upper and lower case, without its final
# punctuation, in NFD, with an emoji, with its words reversed, and with its last word dropped.
BASES = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France.",
    "It costs $3.50, not $4.00!",
    "Photosynthesis converts light energy into chemical energy.",
    "Ça coûte 10 €, déjà payé.",
    "Die Straße ist 2,5 km lang.",
    "Привет, как дела?",
    "Ελληνικά: Καλημέρα κόσμε!",
    "北京是中国的首都。",
    "こんにちは、世界！",
    "مرحبا بالعالم!",
    "मेरा नाम राम है।",
    "Tiếng Việt có dấu.",
    "I love 🍕 and 🍣!",
    "Ready? Set... go!",
    "Use `code` in <html> & \"quotes\".",
    "Numbers: 1,234.5 and 6-7 and 8.",
    "e.g. i.e. etc.",
    "the answer is forty-two",
    "Ünïcödé wörds hère",
]


def variants(text):
    words = text.split()
    return [
        (text, text),
        (text.upper(), text),
        (text.lower(), text),
        (text.rstrip(".!?。！"), text),
        (nfd(text), text),
        (text + " 🙂", text),
        (" ".join(reversed(words)), text),
        (" ".join(words[:-1]), text),
        (text, " ".join(words[1:])),
    ]


def main():
    pairs = list(PAIRS)
    for base in BASES:
        pairs.extend(variants(base))
    seen = set()
    unique = [p for p in pairs if not (p in seen or seen.add(p))]
    fixtures = {
        "generated_by": "scripts/metric-fixtures/generate.py",
        "references": {
            name: version(name) for name in ["sacrebleu", "rouge-score", "rapidfuzz"]
        },
        "pairs": [
            {"output": output, "reference": reference, "scores": scores(output, reference)}
            for output, reference in unique
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One pair per line: diffs of a regenerated file show the pairs that changed.
    pairs = ",\n".join(json.dumps(p, ensure_ascii=False) for p in fixtures.pop("pairs"))
    head = json.dumps(fixtures, ensure_ascii=False)[:-1]
    OUT.write_text(f'{head}, "pairs": [\n{pairs}\n]}}\n', encoding="utf-8")
    print(f"{OUT}: {len(unique)} pairs, {len(unique) * len(scores('', ''))} scores")


if __name__ == "__main__":
    main()
