"""Write the real-data sample under tests/data/real from daily prices that two PyPI packages ship.

Bars: the S&P 500 index (GSPC) and the NASDAQ Composite (IXIC) from `arch` (`arch.data.sp500`,
`arch.data.nasdaq`), and Google (GOOG) from `backtesting` (`backtesting.test.GOOG`), each from
START to END, prices to the cent. GOOG's dates are written as its New York close with the UTC
offset of the day (`2008-03-07T16:00:00-05:00`, then `2008-03-10T16:00:00-04:00` after the
daylight-saving change), as many exports write them; the others as ISO dates. Texts: a few
headlines per symbol (HEADLINES), English but one, timed around closes, a holiday and a
daylight-saving change. Neither package is a dependency of the project; run:

    uv run --with arch==8.0.0 --with backtesting==0.6.6 python scripts/write_real_sample.py
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

COMMAND = "uv run --with arch==8.0.0 --with backtesting==0.6.6 python scripts/write_real_sample.py"
"""The command that writes the sample, with the packages it reads from."""

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "real"
"""Folder laid out as the `files` source reads it: `bars/<SYMBOL>.csv`, `texts/<SYMBOL>.csv`."""

START = dt.date(2005, 7, 1)
"""First day written: 675 sessions before the earliest day the tests run, enough for a
daily run's warm-up of the exponential averages."""

END = dt.date(2008, 12, 31)
"""Last day written: past the tests' days around Thanksgiving 2008."""

SYMBOLS = ("GSPC", "IXIC", "GOOG")
"""Symbols of the sample, each named as a file."""

OFFSET_SYMBOL = "GOOG"
"""The symbol whose dates are written as New York close times with their UTC offset."""

CLOSE = dt.time(16, 0)
"""Regular close of the New York exchanges, the time of day written for OFFSET_SYMBOL."""

NEW_YORK = "America/New_York"


class Headline(NamedTuple):
    """One text item of the sample."""

    symbol: str
    id: str
    published_at: str
    """UTC, ISO 8601 with `Z`."""
    text: str


HEADLINES = (
    # Around the daylight-saving change of 9 March 2008: the close is 21:00 UTC before, 20:00 after.
    Headline("GSPC", "gspc-080306", "2008-03-06T21:15:00Z",
             "Stocks slide as mortgage delinquencies hit a record; S&P 500 loses 2.2%"),
    Headline("GSPC", "gspc-080307", "2008-03-07T20:50:00Z",
             "Wall Street ends the week lower after February payrolls fall"),
    Headline("GSPC", "gspc-080310", "2008-03-10T19:45:00Z",
             "S&P 500 heads for its lowest close since 2006 as credit fears spread"),
    Headline("GSPC", "gspc-080311", "2008-03-11T20:20:00Z",
             "Stocks surge 3.7% after the Fed offers banks $200 billion in Treasuries"),
    Headline("IXIC", "ixic-080306", "2008-03-06T21:05:00Z",
             "Nasdaq drops 2.3% as chip and internet stocks retreat"),
    Headline("IXIC", "ixic-080310", "2008-03-10T19:40:00Z",
             "Nasdaq falls nearly 2% as credit worries hit technology shares"),
    Headline("IXIC", "ixic-080311", "2008-03-11T19:55:00Z",
             "Nasdaq rallies 4% on the Fed's lending plan"),
    Headline("GOOG", "goog-080306", "2008-03-06T20:45:00Z",
             "Google slides 3% as worries over paid clicks weigh on internet shares"),
    Headline("GOOG", "goog-080307-after", "2008-03-07T21:30:00Z",
             "Analysts trim Google price targets ahead of first-quarter results"),
    Headline("GOOG", "goog-080310", "2008-03-10T19:15:00Z",
             "Google falls 4.5% as the technology selloff deepens"),
    Headline("GOOG", "goog-080310-after", "2008-03-10T20:30:00Z",
             "Google investors look to Fed action after a bruising Monday"),
    # Thanksgiving 2008: closed on the 27th, early close (13:00, 18:00 UTC) on the 28th.
    Headline("GSPC", "gspc-081120", "2008-11-20T21:10:00Z",
             "S&P 500 closes at its lowest level since 1997"),
    Headline("GSPC", "gspc-081124", "2008-11-24T14:45:00Z",
             "Stocks jump at the open after the government rescue of Citigroup"),
    Headline("GSPC", "gspc-081126-after", "2008-11-26T21:30:00Z",
             "Stocks rally for a fourth day ahead of Thanksgiving"),
    Headline("GSPC", "gspc-081126-fr", "2008-11-26T22:05:00Z",
             "Wall Street termine en hausse pour la quatrième séance consécutive"),
    Headline("GSPC", "gspc-081127-holiday", "2008-11-27T15:00:00Z",
             "US markets closed for Thanksgiving; futures point to a quiet Friday"),
    Headline("GSPC", "gspc-081128-after", "2008-11-28T18:15:00Z",
             "Stocks post their best five-day gain since 1933 in a shortened session"),
    Headline("GSPC", "gspc-081201", "2008-12-01T21:05:00Z",
             "S&P 500 tumbles 8.9% as economists confirm the recession began a year ago"),
    Headline("IXIC", "ixic-081119", "2008-11-19T21:20:00Z",
             "Nasdaq sinks 6.5% as investors flee risk"),
    Headline("IXIC", "ixic-081124", "2008-11-24T21:00:00Z",
             "Technology shares lead a broad rebound; Nasdaq up 6%"),
    Headline("IXIC", "ixic-081126-after", "2008-11-26T21:45:00Z",
             "Nasdaq gains 4.6% before the holiday break"),
    Headline("IXIC", "ixic-081127-holiday", "2008-11-27T13:00:00Z",
             "Thanksgiving pause: what technology investors will watch on Black Friday"),
    Headline("IXIC", "ixic-081127-es", "2008-11-27T12:00:00Z",
             "El Nasdaq acumula fuertes ganancias antes del feriado de Acción de Gracias"),
    Headline("IXIC", "ixic-081128", "2008-11-28T16:10:00Z",
             "Nasdaq edges up in light post-holiday trading"),
    Headline("IXIC", "ixic-081201", "2008-12-01T20:30:00Z",
             "Nasdaq plunges nearly 9% as the recession is made official"),
    Headline("GOOG", "goog-081121", "2008-11-21T20:55:00Z",
             "Google shares hold near three-year lows as the market swings"),
    Headline("GOOG", "goog-081125-after", "2008-11-25T21:10:00Z",
             "Google jumps nearly 10% in a broad technology rally"),
    Headline("GOOG", "goog-081126-after", "2008-11-26T21:40:00Z",
             "Google extends gains into the holiday as investors bet on online shopping"),
    Headline("GOOG", "goog-081127-holiday", "2008-11-27T16:00:00Z",
             "Black Friday preview: online retailers expect record traffic, search ads in focus"),
    Headline("GOOG", "goog-081127-de", "2008-11-27T10:00:00Z",
             "Google-Aktie: Analysten sehen nach der Erholung weiteres Abwärtspotenzial"),
    Headline("GOOG", "goog-081128", "2008-11-28T17:30:00Z",
             "Google edges higher in a thin, shortened post-holiday session"),
    Headline("GOOG", "goog-081128-after", "2008-11-28T18:20:00Z",
             "Google ends the short session little changed; traders eye Monday's factory data"),
    Headline("GOOG", "goog-081201", "2008-12-01T20:40:00Z",
             "Google sinks 9% as the recession is declared official"),
)  # fmt: skip
"""Headlines written for the sample, on the days' real moves; not quotes of published news."""


def _module(name: str) -> Any:
    """A module of a package installed only for this script, with the command that provides it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise SystemExit(f"{exc}: run {COMMAND}") from exc


def packaged_prices(symbol: str) -> pd.DataFrame:
    """Daily OHLCV of a symbol as its package ships it (columns Open, High, Low, Close, Volume)."""
    if symbol == "GSPC":
        frame: pd.DataFrame = _module("arch.data.sp500").load()
    elif symbol == "IXIC":
        frame = _module("arch.data.nasdaq").load()
    elif symbol == "GOOG":
        frame = _module("backtesting.test").GOOG
    else:
        raise ValueError(f"no packaged prices for {symbol}")
    return frame


def bars_frame(prices: pd.DataFrame, *, with_offsets: bool) -> pd.DataFrame:
    """The sample's bars from packaged prices: START to END, prices to the cent, whole volumes."""
    window = prices.loc[pd.Timestamp(START) : pd.Timestamp(END)]
    days = pd.DatetimeIndex(window.index).normalize()
    if with_offsets:
        stamps = (days + pd.Timedelta(hours=CLOSE.hour)).tz_localize(NEW_YORK)
        dates = [stamp.isoformat() for stamp in stamps]
    else:
        dates = [day.date().isoformat() for day in days]
    bars = pd.DataFrame({"date": dates})
    for column in ("Open", "High", "Low", "Close"):
        # The packages hold cent prices as binary floats (1229.229980); write the cents.
        bars[column.lower()] = window[column].to_numpy().round(2)
    bars["volume"] = window["Volume"].to_numpy().round().astype("int64")
    return bars


def texts_frame(symbol: str) -> pd.DataFrame:
    """The sample's texts of one symbol, in publication order."""
    rows = [h for h in HEADLINES if h.symbol == symbol]
    frame = pd.DataFrame(
        {
            "id": [h.id for h in rows],
            "published_at": [h.published_at for h in rows],
            "text": [h.text for h in rows],
        }
    )
    return frame.sort_values(["published_at", "id"], kind="stable").reset_index(drop=True)


def write_sample(root: Path) -> list[Path]:
    """Write every symbol's bars and texts under `root`; the files written."""
    written = []
    for kind in ("bars", "texts"):
        (root / kind).mkdir(parents=True, exist_ok=True)
    for symbol in SYMBOLS:
        bars = bars_frame(packaged_prices(symbol), with_offsets=symbol == OFFSET_SYMBOL)
        bars.to_csv(root / "bars" / f"{symbol}.csv", index=False, float_format="%.2f")
        texts_frame(symbol).to_csv(root / "texts" / f"{symbol}.csv", index=False)
        written += [root / "bars" / f"{symbol}.csv", root / "texts" / f"{symbol}.csv"]
    return written


def main() -> None:
    """Write the sample into tests/data/real (or the folder given) and list the files."""
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE
    for path in write_sample(root):
        print(f"{path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
