"""Which texts a sentiment model can judge: the rest are kept but not scored as opinion.

A text is normalised (Unicode NFKC; control, format, private-use and unassigned characters
dropped; whitespace collapsed) and then screened, in this order:

- `no_letters`: nothing left to read (emoji, punctuation, numbers, zero-width characters);
- `foreign`: written mostly in another script than the model's language (Cyrillic or Han for an
  English model), whatever the language detector says;
- `unknown_tokens`: more than `max_unknown_share` of its words are tokens the model's own
  vocabulary does not know (its unknown token, or a special token such as a literal "[UNK]");
- `foreign`: py3langid names another language with a normalised probability of at least
  `min_confidence`, among the languages market news is commonly written in.

The detector is confident only on sentences: short English shorthand ("TSLA Q3 EPS $0.72 vs
$0.58 est.") spreads its probability thinly and stays judgeable.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from tokenizers import Tokenizer

DEFAULT_LANGUAGE = "en"
"""The language of a model whose manifest names none."""

MAX_UNKNOWN_SHARE = 0.5
"""Words that are unknown tokens, as a share of all words, above which a text is not scored."""

MIN_CONFIDENCE = 0.9
"""Normalised probability of another language from which a text counts as foreign. English
market texts of this project reach at most 0.55 and real headlines in French, German or Spanish
mostly over 0.95 (docs/sentiment-model.md)."""

CANDIDATE_LANGUAGES: tuple[str, ...] = (
    "ar", "cs", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "hu", "id",
    "it", "ja", "ko", "nl", "no", "pl", "pt", "ro", "ru", "sv", "tr", "uk", "zh",
)  # fmt: skip
"""Languages the detector chooses among: those market news is commonly written in. Among all
of py3langid's 140 languages, a real German headline shares its probability with Luxembourgish
and a ticker-heavy English one drifts to Latin or Occitan; fewer, likelier candidates make real
foreign text confident and leave shorthand uncertain."""

LATIN_SCRIPT_LANGUAGES = frozenset(
    {"cs", "da", "de", "en", "es", "fi", "fr", "hu", "id", "it", "nl", "no", "pl", "pt", "ro"}
    | {"sv", "tr"}
)
"""Languages written in the Latin script: for a model reading one, text in another script is
foreign without asking the detector."""

_ASCII_LETTER = re.compile("[A-Za-z]")

UNDETERMINED = "und"
"""ISO 639 code for a language that could not be told."""


class Unjudgeable(StrEnum):
    """Why a text is not scored; a closed set, so it can label a metric."""

    FOREIGN = "foreign"
    UNKNOWN_TOKENS = "unknown_tokens"
    NO_LETTERS = "no_letters"


_DESCRIPTIONS = {
    Unjudgeable.FOREIGN: "in another language",
    Unjudgeable.UNKNOWN_TOKENS: "made mostly of tokens the model does not know",
    Unjudgeable.NO_LETTERS: "with no letters",
}


@dataclass(frozen=True)
class Screening:
    """The verdict on a batch of texts, in input order."""

    texts: list[str]
    """The normalised texts: what the model should score."""
    reasons: list[Unjudgeable | None]
    """Why each text is not scored, or None for a judgeable one."""
    languages: list[str | None]
    """The detected language of each foreign text, None for the others."""

    @property
    def judgeable(self) -> np.ndarray:
        """A boolean mask of the texts the model can judge."""
        return np.fromiter((r is None for r in self.reasons), dtype=bool, count=len(self.reasons))

    def counts(self) -> Counter[Unjudgeable]:
        """Texts not scored, by reason."""
        return Counter(r for r in self.reasons if r is not None)

    def note(self) -> str | None:
        """One line for people: how many texts were not scored and why; None if all were scored."""
        counts = self.counts()
        total = sum(counts.values())
        if not total:
            return None
        parts = []
        for reason in Unjudgeable:
            if counts[reason]:
                part = f"{counts[reason]} {_DESCRIPTIONS[reason]}"
                if reason is Unjudgeable.FOREIGN:
                    found = Counter(lang for lang in self.languages if lang is not None)
                    part += f" ({', '.join(lang for lang, _ in found.most_common())})"
                parts.append(part)
        return f"{total} text{'' if total == 1 else 's'} not scored: {', '.join(parts)}"


def normalise(text: str) -> str:
    """NFKC, without control, format, private-use or unassigned characters, spaces collapsed."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        # Category C is control, format (zero-width, bidi marks), surrogate, private use and
        # unassigned: none carries words; whitespace controls (tab, newline) become spaces.
        text = "".join(
            " " if c.isspace() else c
            for c in text
            if c.isspace() or unicodedata.category(c)[0] != "C"
        )
    elif not text.isprintable():
        text = "".join(c if c.isprintable() or c.isspace() else "" for c in text)
    return " ".join(text.split())


class TextScreen:
    """Screens texts for one model: its tokenizer's vocabulary and its language."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        language: str = DEFAULT_LANGUAGE,
        max_unknown_share: float = MAX_UNKNOWN_SHARE,
        min_confidence: float = MIN_CONFIDENCE,
    ) -> None:
        if language not in CANDIDATE_LANGUAGES:
            raise ValueError(
                f"language {language!r} is not one the screen can detect "
                f"(one of {', '.join(CANDIDATE_LANGUAGES)})"
            )
        if not 0 <= max_unknown_share < 1:
            raise ValueError(f"max_unknown_share must be in [0, 1), not {max_unknown_share}")
        if not 0 < min_confidence <= 1:
            raise ValueError(f"min_confidence must be in (0, 1], not {min_confidence}")
        self.language = language
        self.max_unknown_share = max_unknown_share
        self.min_confidence = min_confidence
        # A copy without padding: screening reads each text's own tokens. Truncation stays, so
        # the share is of the tokens the model sees.
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_padding()
        self._unknown_ids, self._punctuation = _vocabulary_classes(self._tokenizer)

    def screen(self, texts: Sequence[str]) -> Screening:
        """Normalise `texts` and tell which the model can judge."""
        normalised = [normalise(t) for t in texts]
        reasons: list[Unjudgeable | None] = [None] * len(normalised)
        languages: list[str | None] = [None] * len(normalised)
        lettered = []
        for i, text in enumerate(normalised):
            if text.isascii():
                # Most texts: letters are A-Z, all Latin, and a regex finds one fastest.
                if _ASCII_LETTER.search(text) is None:
                    reasons[i] = Unjudgeable.NO_LETTERS
                else:
                    lettered.append(i)
                continue
            letters = [c for c in text if c.isalpha()]
            if not letters:
                reasons[i] = Unjudgeable.NO_LETTERS
            elif self.language in LATIN_SCRIPT_LANGUAGES and not _mostly_latin(letters):
                reasons[i] = Unjudgeable.FOREIGN
                languages[i] = _other_language(text, self.language)
            else:
                lettered.append(i)
        shares = self.unknown_shares([normalised[i] for i in lettered])
        detector = _detector()
        for i, share in zip(lettered, shares, strict=True):
            if share > self.max_unknown_share:
                reasons[i] = Unjudgeable.UNKNOWN_TOKENS
                continue
            language, confidence = detector.classify(normalised[i])
            if language != self.language and confidence >= self.min_confidence:
                reasons[i] = Unjudgeable.FOREIGN
                languages[i] = language
        return Screening(texts=normalised, reasons=reasons, languages=languages)

    def unknown_shares(self, texts: Sequence[str]) -> list[float]:
        """Per text, the share of its words that the vocabulary does not know.

        A word is one the tokenizer's pre-tokenizer split off; punctuation words do not count,
        an unknown or special token inside the text always does.
        """
        shares = []
        for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=False):
            words = unknown = 0
            last_word = None
            for token, word in zip(encoding.ids, encoding.word_ids, strict=True):
                if word is None or word == last_word:
                    continue
                last_word = word
                if token in self._unknown_ids:
                    unknown += 1
                    words += 1
                elif not self._punctuation[token]:
                    words += 1
            shares.append(unknown / words if words else 0.0)
        return shares


def _vocabulary_classes(tokenizer: Tokenizer) -> tuple[frozenset[int], np.ndarray]:
    """The ids that stand for no word (unknown and special tokens), and which ids are
    punctuation only."""
    special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    unknown_token = getattr(tokenizer.model, "unk_token", None)
    unknown_id = tokenizer.token_to_id(unknown_token) if unknown_token else None
    if unknown_id is not None:
        special.add(unknown_id)
    vocabulary = tokenizer.get_vocab(with_added_tokens=True)
    punctuation = np.zeros(max(vocabulary.values(), default=0) + 1, dtype=bool)
    for token, index in vocabulary.items():
        body = token.removeprefix("##").removeprefix("Ġ").removeprefix("▁")
        punctuation[index] = bool(body) and not any(c.isalnum() for c in body)
    return frozenset(special), punctuation


def _mostly_latin(letters: list[str]) -> bool:
    """Whether at least half of the letters are Latin ones."""
    latin = sum(1 for c in letters if c < "\u0250" or "\u1e00" <= c <= "\u1eff")
    return 2 * latin >= len(letters)


def _other_language(text: str, model_language: str) -> str:
    """The detector's best guess for a text in another script, never the model's language."""
    ranked = _detector().rank(text)
    best = next((lang for lang, _ in ranked if lang != model_language), UNDETERMINED)
    return str(best)


@functools.cache
def _detector() -> LanguageDetector:
    """py3langid's model restricted to the candidate languages, loaded once per process."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(CANDIDATE_LANGUAGES))
    return LanguageDetector(identifier)


class LanguageDetector:
    """A typed face on py3langid's identifier; read-only after loading, so shareable by threads."""

    def __init__(self, identifier: object) -> None:
        self._identifier = identifier

    def classify(self, text: str) -> tuple[str, float]:
        """The likeliest language and its normalised probability."""
        language, probability = self._identifier.classify(text)  # type: ignore[attr-defined]
        return str(language), float(probability)

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every candidate language with its probability, likeliest first."""
        ranked = self._identifier.rank(text)  # type: ignore[attr-defined]
        return [(str(lang), float(p)) for lang, p in ranked]
