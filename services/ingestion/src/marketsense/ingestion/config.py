"""Ingestion settings."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from marketsense.common.calendar import DEFAULT_EXCHANGE, known_exchanges
from marketsense.common.features import MIN_BARS
from marketsense.common.settings import CommonSettings


class IngestionSettings(CommonSettings):
    """Settings of the ingestion service."""

    market_seed: int = 7
    """Seed of the simulated market; one seed always gives the same prices and texts."""

    lookback_days: int = Field(default=MIN_BARS, ge=MIN_BARS)
    """Trading days of bars each run fetches per symbol: the features' warm-up and the day."""

    source: Literal["simulated", "files", "http"] = "simulated"
    """Where bars and texts come from: the seeded simulation, files under `files_root`, or the
    HTTP APIs (Yahoo for bars; X and/or RSS for texts when configured)."""

    market_sectors: int = Field(default=8, ge=1)
    """Sectors of the simulated market; symbols in one sector share a sector factor."""

    text_signal_strength: float = 0.5
    """How strongly the simulated texts' tone leads the next day's return: the next idiosyncratic
    return moves by this times the day's mean tone (in [-1, 1]) times the symbol's volatility."""

    regime_change: dt.date | None = None
    """Simulated day after which the texts' lead is multiplied by `regime_signal_factor`; unset
    means no change."""

    regime_signal_factor: float = -1.0
    """Multiplier of the texts' lead after `regime_change`: -1 flips it, 0 removes it."""

    fail_symbols: Annotated[set[str], NoDecode] = Field(default_factory=set)
    """Symbols the simulated source always rejects, to exercise dead-lettering; comma-separated
    (`AAA,BBB`) or a JSON list."""

    unavailable_symbols: Annotated[set[str], NoDecode] = Field(default_factory=set)
    """Symbols the simulated source never answers for, with a retryable error every attempt, so
    they are retried up to the maximum attempts and then dead-lettered; same format as
    `fail_symbols`."""

    transient_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability that a simulated fetch fails with a passing error; reproducible per seed,
    symbol, day and attempt, so a retry can succeed."""

    files_root: Path | None = None
    """Folder with `bars/<SYMBOL>.csv|.parquet` and `texts/<SYMBOL>.csv|.parquet`; required
    when `source` is `files`."""

    yahoo_base_url: str = "https://query1.finance.yahoo.com"
    """Base URL of Yahoo's chart API, the HTTP source of bars."""

    x_base_url: str = "https://api.x.com"
    """Base URL of X's API v2, for recent search."""

    x_bearer_token: SecretStr | None = None
    """App bearer token for X; unset means no posts from X."""

    x_max_pages: int = Field(default=5, ge=1)
    """Pages of 100 posts fetched per symbol from X's recent search at most."""

    rss_url_template: str | None = None
    """Feed URL with a `{symbol}` placeholder, e.g. `https://feeds.example.com/rss?s={symbol}`;
    unset means no news from RSS."""

    http_timeout_seconds: float = Field(default=10.0, gt=0)
    """Timeout of each HTTP attempt (connect, read, write, pool)."""

    http_max_attempts: int = Field(default=4, ge=1)
    """Attempts per HTTP request before a passing failure (timeout, 5xx, 429) is given up."""

    http_backoff_base_seconds: float = Field(default=0.5, ge=0)
    """First wait between HTTP attempts; it doubles each attempt, with jitter."""

    http_max_wait_seconds: float = Field(default=30.0, ge=0)
    """Longest wait between HTTP attempts, even when `Retry-After` asks for longer."""

    exchange: str = DEFAULT_EXCHANGE
    """Exchange calendar (ISO 10383 MIC, e.g. XNYS, XNAS, XLON) of the symbols: bars dated on
    days it does not trade are dropped with a note, and a text counts for the first session
    whose close is after its publication."""

    check_jump_deviations: float = Field(default=10.0, gt=0)
    """A close-to-close move beyond this many robust deviations of the symbol's daily moves is
    noted as a jump (a suspected split, or a data error); real jumps are rarer than 10."""

    check_fail_on_split: bool = True
    """Fail a symbol whose bars show a suspected unadjusted split (a jump whose ratio is near a
    whole split ratio) within the sessions its features still feel; false notes it instead,
    for data adjusted in a way the check mistakes for a split."""

    check_flat_sessions: int = Field(default=5, ge=2)
    """Bars in a row with unchanged prices at the end of the data that are noted as flat."""

    check_volume_sessions: int = Field(default=20, ge=2)
    """Last bars whose volume is checked for zeros or a constant value (the volume z-score's
    window)."""

    @field_validator("fail_symbols", "unavailable_symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        """Accept `AAA,BBB` as well as a JSON list; symbols are upper-cased."""
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else text.split(",")
            return {str(item).strip().upper() for item in items if str(item).strip()}
        if isinstance(value, list | set | tuple | frozenset):
            return {str(item).strip().upper() for item in value}
        return value

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        """A calendar `exchange_calendars` has, named in upper case."""
        name = value.strip().upper()
        if name not in known_exchanges():
            raise ValueError(f"unknown exchange {value!r}: use an ISO 10383 MIC such as XNYS")
        return name

    @field_validator("rss_url_template")
    @classmethod
    def _needs_symbol_placeholder(cls, value: str | None) -> str | None:
        """A feed URL that does not name the symbol would give every symbol the same news."""
        if value is not None and "{symbol}" not in value:
            raise ValueError("rss_url_template needs a {symbol} placeholder")
        return value
