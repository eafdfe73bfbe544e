"""The sentence templates the sentiment splits are generated from, and their word lists.

`train` templates read like wire-service and annual-report sentences, `heldout` ones like market
headlines and posts; see `sentiment_data` for why they differ. After changing a template,
regenerate the shipped files:

    uv run python -m marketsense.modelkit.sentiment_data
"""

from __future__ import annotations

import random
from collections.abc import Callable

Template = Callable[[random.Random], str]
"""Writes one sentence from a random generator."""


def _pick(rng: random.Random, options: tuple[str, ...]) -> str:
    return options[rng.randrange(len(options))]


# --- train: wire-service and annual-report sentences -------------------------------------------

_COMPANIES = (
    "Aurora Forest Products",
    "Baltic Shipping Group",
    "Kestrel Software",
    "Norrland Paper",
    "Meridian Foods",
    "Solvik Energy",
    "Harborline Logistics",
    "Pinecrest Retail",
    "Tarnby Mining",
    "Eskola Engineering",
    "Lumo Telecom",
    "Vesta Insurance",
    "Granlund Construction",
    "Fjordline Ferries",
    "Kallio Pharmaceuticals",
    "Silvergate Media",
    "Halvorsen Chemicals",
    "Nordic Cable Works",
    "Ostra Bank",
    "Rautio Steel",
    "Lindqvist Machinery",
    "Saimaa Packaging",
    "Vikander Electronics",
    "Ilves Sports",
)
_METRICS = (
    "net sales",
    "operating profit",
    "net profit",
    "revenue",
    "order intake",
    "operating margin",
    "comparable sales",
    "EBITDA",
    "cash flow from operations",
    "profit before taxes",
    "earnings per share",
    "the order backlog",
)
_PERIODS = (
    "the first quarter",
    "the second quarter",
    "the third quarter",
    "the fourth quarter",
    "January-June",
    "January-September",
    "the financial year",
    "the review period",
)
_RISE = ("rose", "increased", "grew", "climbed", "improved", "went up")
_FALL = ("fell", "decreased", "declined", "dropped", "weakened", "went down")
_CURRENCIES = ("EUR", "USD", "SEK", "GBP", "NOK")
_PRODUCTS = (
    "paper machines",
    "packaging board",
    "network equipment",
    "frozen foods",
    "steel tubes",
    "industrial software",
    "marine engines",
    "cables",
    "generic medicines",
    "consumer electronics",
)
_CLIENTS = (
    "a Finnish utility",
    "the Swedish Transport Administration",
    "a German carmaker",
    "a Chinese paper mill",
    "the Norwegian navy",
    "a US hospital group",
    "a Dutch retailer",
)
_CITIES = ("Helsinki", "Espoo", "Tampere", "Stockholm", "Oslo", "Gothenburg", "Turku", "Copenhagen")
_EXCHANGES = ("Nasdaq Helsinki", "Nasdaq Stockholm", "the Oslo Stock Exchange", "Euronext")
_PEOPLE = ("Anna Virtanen", "Lars Nilsson", "Mikko Laine", "Sofia Berg", "Jukka Heikkinen")
_ROLES = ("chief financial officer", "head of sales", "chief executive officer", "general counsel")
_REGIONS = ("the Nordic countries", "Europe", "the Baltic region", "North America", "Asia")
_DATES = ("3 February", "28 April", "17 July", "23 October", "12 March", "6 November")
_FACILITIES = ("plants", "stores", "service centres", "warehouses", "sawmills")


def _amounts(rng: random.Random) -> tuple[str, str]:
    """A smaller and a larger amount in millions, as a report would print them."""
    low = rng.randrange(5, 400) + rng.randrange(10) / 10
    high = low * (1 + rng.randrange(4, 60) / 100)
    return f"{low:.1f}", f"{high:.1f}"


def _pct(rng: random.Random) -> str:
    return f"{rng.randrange(2, 45)}.{rng.randrange(10)}"


def _train_positive() -> tuple[Template, ...]:
    return (
        lambda r: (
            f"{_pick(r, _COMPANIES)}'s {_pick(r, _METRICS)} {_pick(r, _RISE)} by {_pct(r)}% "
            f"to {_pick(r, _CURRENCIES)} {_amounts(r)[1]} million in {_pick(r, _PERIODS)}."
        ),
        lambda r: _from_to(r, rising=True),
        lambda r: (
            f"{_pick(r, _COMPANIES)} raised its outlook and now expects {_pick(r, _METRICS)} "
            f"to grow by {_pct(r)}% this year."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} has won an order worth {_pick(r, _CURRENCIES)} "
            f"{_amounts(r)[0]} million from {_pick(r, _CLIENTS)}."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} said demand for its {_pick(r, _PRODUCTS)} remained strong "
            "and its profitability improved."
        ),
        lambda r: (
            f"The board of {_pick(r, _COMPANIES)} proposes to increase the dividend to "
            f"{_pick(r, _CURRENCIES)} 0.{r.randrange(10, 99)} per share."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} returned to profit, reporting {_pick(r, _METRICS)} of "
            f"{_pick(r, _CURRENCIES)} {_amounts(r)[0]} million against a loss a year earlier."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} reported record {_pick(r, _METRICS)} for "
            f"{_pick(r, _PERIODS)}, well above the previous year."
        ),
        lambda r: (
            f"The acquisition is expected to strengthen {_pick(r, _COMPANIES)}'s market position "
            "and to improve its earnings from next year."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)}'s share price rose {_pct(r)}% after the company published "
            "better-than-expected results."
        ),
    )


def _train_negative() -> tuple[Template, ...]:
    return (
        lambda r: (
            f"{_pick(r, _COMPANIES)}'s {_pick(r, _METRICS)} {_pick(r, _FALL)} by {_pct(r)}% "
            f"to {_pick(r, _CURRENCIES)} {_amounts(r)[0]} million in {_pick(r, _PERIODS)}."
        ),
        lambda r: _from_to(r, rising=False),
        lambda r: (
            f"{_pick(r, _COMPANIES)} lowered its outlook and now expects {_pick(r, _METRICS)} "
            f"to decline by {_pct(r)}% this year."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} will reduce its workforce by {r.randrange(40, 900)} people "
            "as part of a restructuring programme."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} swung to an operating loss of {_pick(r, _CURRENCIES)} "
            f"{_amounts(r)[0]} million in {_pick(r, _PERIODS)}."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} said weak demand for its {_pick(r, _PRODUCTS)} weighed on "
            "its profitability."
        ),
        lambda r: (
            f"The board of {_pick(r, _COMPANIES)} proposes that no dividend be paid for the "
            "financial year."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} issued a profit warning, citing higher raw material costs "
            f"and lower prices for {_pick(r, _PRODUCTS)}."
        ),
        lambda r: (
            f"{_pick(r, _CLIENTS).capitalize()} cancelled a {_pick(r, _CURRENCIES)} "
            f"{_amounts(r)[0]} million contract with {_pick(r, _COMPANIES)}."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)}'s share price fell {_pct(r)}% after the company published "
            "weaker-than-expected results."
        ),
    )


def _train_neutral() -> tuple[Template, ...]:
    return (
        lambda r: (
            f"{_pick(r, _COMPANIES)} will publish its interim report for {_pick(r, _PERIODS)} "
            f"on {_pick(r, _DATES)}."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} is headquartered in {_pick(r, _CITIES)} and employs about "
            f"{r.randrange(2, 90) * 100} people."
        ),
        lambda r: f"The shares of {_pick(r, _COMPANIES)} are listed on {_pick(r, _EXCHANGES)}.",
        lambda r: (
            f"{_pick(r, _COMPANIES)} has appointed {_pick(r, _PEOPLE)} as its "
            f"{_pick(r, _ROLES)}, effective {_pick(r, _DATES)}."
        ),
        lambda r: (
            f"The annual general meeting of {_pick(r, _COMPANIES)} will be held in "
            f"{_pick(r, _CITIES)} on {_pick(r, _DATES)}."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} manufactures {_pick(r, _PRODUCTS)} for customers in "
            f"{_pick(r, _REGIONS)}."
        ),
        lambda r: (
            f"In {_pick(r, _PERIODS)}, {_pick(r, _METRICS)} was {_pick(r, _CURRENCIES)} "
            f"{_amounts(r)[0]} million, unchanged from the previous year."
        ),
        lambda r: (
            f"The financial statements of {_pick(r, _COMPANIES)} are prepared in accordance "
            "with IFRS."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} operates {r.randrange(3, 120)} {_pick(r, _FACILITIES)} in "
            f"{_pick(r, _REGIONS)}."
        ),
        lambda r: (
            f"{_pick(r, _COMPANIES)} will hold a conference call for analysts and investors at "
            f"{r.randrange(9, 16)}:00 local time."
        ),
    )


def _from_to(rng: random.Random, *, rising: bool) -> str:
    low, high = _amounts(rng)
    now, before = (high, low) if rising else (low, high)
    verb = _pick(rng, _RISE if rising else _FALL)
    currency = _pick(rng, _CURRENCIES)
    return (
        f"In {_pick(rng, _PERIODS)}, {_pick(rng, _METRICS)} {verb} to {currency} {now} million "
        f"from {currency} {before} million a year earlier."
    )


# --- held-out: market headlines and posts -------------------------------------------------------

_TICKERS = (
    "$QRTX",
    "$BLZE",
    "$HLMX",
    "$PRSM",
    "$ZNTH",
    "$KORE",
    "$ORBT",
    "$VRDN",
    "$TESO",
    "$AMPL",
)
_NAMES = (
    "Zenith Robotics",
    "Halcyon Biotech",
    "Quartz Semiconductor",
    "Blaze Airlines",
    "Orbital Freight",
    "Verdant Foods",
    "Prism Health",
    "Ampla Solar",
    "Kore Payments",
    "Teso Motors",
)
_BROKERS = ("Goldman", "Morgan Stanley", "JPMorgan", "Jefferies", "Bernstein", "Citi", "UBS")
_PARTNERS = ("Amazon", "the Pentagon", "Toyota", "Pfizer", "Walmart", "a Gulf sovereign fund")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_MONTHS = ("Jan.", "March", "May", "June", "Sept.", "Dec.")
_HQ = ("Austin", "Miami", "Denver", "Phoenix", "Nashville", "Raleigh")
_EXECUTIVES = ("Dana Whitfield", "Raj Patel", "Maria Gonzalez", "Kevin O'Brien", "Emily Chen")


def _move(rng: random.Random) -> str:
    return f"{rng.randrange(3, 38)}%"


def _quarter(rng: random.Random) -> str:
    return f"Q{rng.randrange(1, 5)}"


def _heldout_positive() -> tuple[Template, ...]:
    return (
        lambda r: (
            f"{_pick(r, _TICKERS)} beats on EPS and revenue, stock pops {_move(r)} after hours"
        ),
        lambda r: (
            f"{_pick(r, _NAMES)} shares soar {_move(r)} as {_quarter(r)} profit tops Street "
            "forecasts"
        ),
        lambda r: (
            f"{_pick(r, _TICKERS)} ripping higher today, fresh all-time high. Bulls in charge"
        ),
        lambda r: (
            f"Upgrade: {_pick(r, _BROKERS)} lifts {_pick(r, _TICKERS)} to Buy, sees "
            f"{_move(r)} upside"
        ),
        lambda r: (
            f"{_pick(r, _NAMES)} hikes its payout and unveils ${r.randrange(1, 9)}B share buyback"
        ),
        lambda r: f"{_pick(r, _TICKERS)} skyrockets after FDA approves its lead drug",
        lambda r: (
            f"Monster quarter for {_pick(r, _TICKERS)}: record bookings and guidance raised. "
            "Very bullish"
        ),
        lambda r: (
            f"{_pick(r, _NAMES)} lands multiyear deal with {_pick(r, _PARTNERS)}; stock jumps "
            f"{_move(r)}"
        ),
        lambda r: f"{_pick(r, _TICKERS)} crushing estimates again, margins expanding nicely",
        lambda r: f"Blowout {_quarter(r)} from {_pick(r, _NAMES)} sends the stock to a record",
    )


def _heldout_negative() -> tuple[Template, ...]:
    return (
        lambda r: (
            f"{_pick(r, _TICKERS)} misses on revenue, shares tank {_move(r)} in premarket trading"
        ),
        lambda r: f"{_pick(r, _NAMES)} stock plunges {_move(r)} as {_quarter(r)} loss widens",
        lambda r: (
            f"Downgrade: {_pick(r, _BROKERS)} cuts {_pick(r, _TICKERS)} to Sell, slashes target "
            f"to ${r.randrange(5, 80)}"
        ),
        lambda r: f"{_pick(r, _NAMES)} slashes full-year forecast, blames soft demand",
        lambda r: f"{_pick(r, _TICKERS)} tumbles after CEO abruptly quits amid accounting probe",
        lambda r: (
            f"{_pick(r, _NAMES)} to lay off {r.randrange(2, 40) * 100} workers as sales slump"
        ),
        lambda r: f"Ugly print from {_pick(r, _TICKERS)}. Guidance cut, margins crushed. Bearish",
        lambda r: (
            f"{_pick(r, _TICKERS)} sinks as regulators block its merger with {_pick(r, _PARTNERS)}"
        ),
        lambda r: f"{_pick(r, _NAMES)} suspends dividend, shares slide to a 52-week low",
        lambda r: f"{_pick(r, _TICKERS)} craters after short seller alleges fraud",
    )


def _heldout_neutral() -> tuple[Template, ...]:
    return (
        lambda r: (
            f"{_pick(r, _TICKERS)} to report {_quarter(r)} earnings {_pick(r, _WEEKDAYS)} after "
            "the close"
        ),
        lambda r: (
            f"{_pick(r, _NAMES)} sets annual shareholder meeting for {_pick(r, _MONTHS)} "
            f"{r.randrange(1, 29)}"
        ),
        lambda r: f"{_pick(r, _TICKERS)} goes ex-dividend on {_pick(r, _WEEKDAYS)}",
        lambda r: (
            f"{_pick(r, _NAMES)} to present at the {_pick(r, _BROKERS)} tech conference next week"
        ),
        lambda r: f"What is everyone expecting from {_pick(r, _TICKERS)} this week?",
        lambda r: f"{_pick(r, _NAMES)} files its quarterly 10-Q with the SEC",
        lambda r: f"{_pick(r, _TICKERS)} trading flat ahead of the Fed decision",
        lambda r: f"{_pick(r, _NAMES)} names {_pick(r, _EXECUTIVES)} as CFO",
        lambda r: f"Added {_pick(r, _TICKERS)} to my watchlist, no position yet",
        lambda r: f"{_pick(r, _NAMES)} moves its headquarters to {_pick(r, _HQ)}",
    )


TEMPLATES: dict[str, dict[str, Callable[[], tuple[Template, ...]]]] = {
    "train": {
        "negative": _train_negative,
        "neutral": _train_neutral,
        "positive": _train_positive,
    },
    "heldout": {
        "negative": _heldout_negative,
        "neutral": _heldout_neutral,
        "positive": _heldout_positive,
    },
}
"""Template factories by split style (`train`, `heldout`) and label."""
