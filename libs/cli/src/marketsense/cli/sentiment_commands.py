"""`marketsense models build-sentiment`, `models export-hf` and `models score-sentiment`:
sentiment artifacts for people.

torch and transformers load only when one of these commands runs: the rest of the CLI starts fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from marketsense.cli.output import AsJson, console, fail

if TYPE_CHECKING:
    from marketsense.models.sentiment import SentimentManifest
    from marketsense.models.text_screen import Screening


def register(models_app: typer.Typer) -> None:
    """Add `build-sentiment` and `export-hf` to the `models` command group."""
    models_app.command("build-sentiment")(build_sentiment)
    models_app.command("export-hf")(export_hf)
    models_app.command("score-sentiment")(score_sentiment)


def build_sentiment(
    out: Annotated[Path, typer.Option(help="Folder to write the artifact to; created if missing.")],
    version: Annotated[str, typer.Option(help="Version recorded in the manifest.")] = "1",
) -> None:
    """Build the default sentiment model (all-MiniLM-L6-v2, trained head) as fp32 and int8 ONNX."""
    _check_out(out)
    with _failing_cleanly(), _steps() as step:
        step("loading torch and transformers")
        from marketsense.modelkit.sentiment_build import build_default_sentiment_model

        manifest = build_default_sentiment_model(out, version=version, on_progress=step)
    _summarise(manifest, out)


def export_hf(
    src: Annotated[
        Path, typer.Argument(help="Local Hugging Face sequence-classification model folder.")
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the artifact to; created if missing.")],
    name: Annotated[
        str | None, typer.Option(help="Model name in the manifest (default: SRC's folder name).")
    ] = None,
    version: Annotated[str, typer.Option(help="Version recorded in the manifest.")] = "1",
) -> None:
    """Export a local Hugging Face classifier (FinBERT and the like) as a sentiment artifact."""
    if not src.is_dir():
        raise fail(f"{src} is not a folder: pass a local model folder with config.json")
    _check_out(out)
    with _failing_cleanly(), _steps() as step:
        step("loading torch and transformers")
        from marketsense.modelkit.hf_export import export_hf_classifier

        manifest = export_hf_classifier(
            src, out, name=name or src.resolve().name, version=version, on_progress=step
        )
    _summarise(manifest, out)


def score_sentiment(
    texts: Annotated[list[str], typer.Argument(help="Texts to score, one argument each.")],
    model: Annotated[
        Path | None,
        typer.Option(help="Sentiment artifact folder (default: the one processing serves)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Score texts as processing does: texts the model cannot judge are named, not scored."""
    from marketsense.models.files import MANIFEST_FILE
    from marketsense.models.sentiment import SentimentModel
    from marketsense.processing.config import ProcessingSettings

    folder = model or ProcessingSettings().resolved_sentiment_model_path()
    if not (folder / MANIFEST_FILE).exists():
        raise fail(
            f"no sentiment model at {folder}: build one with "
            "`marketsense models build-sentiment --out DIR` and pass --model DIR"
        )
    with _failing_cleanly():
        loaded = SentimentModel(folder, quantized=True)
    scores, screening = loaded.judged_scores(texts)
    if as_json:
        typer.echo(json.dumps(_scored_rows(texts, scores.tolist(), screening), indent=2))
        return
    for row in _scored_rows(texts, scores.tolist(), screening):
        if row["not_scored"] is None:
            verdict = f"{row['score']:+.2f}"
        else:
            language = f" ({row['language']})" if row["language"] else ""
            verdict = f"not scored: {row['not_scored']}{language}"
        console.print(f"{verdict}  {escape(str(row['text']))}", soft_wrap=True, highlight=False)
    note = screening.note()
    if note:
        console.print(escape(note), soft_wrap=True, highlight=False)


def _scored_rows(
    texts: list[str], scores: list[float], screening: Screening
) -> list[dict[str, object]]:
    """One row per text: its score, or why it was not scored (and the language of foreign text)."""
    return [
        {
            "text": text,
            "score": None if reason else score,
            "not_scored": reason.value if reason else None,
            "language": language,
        }
        for text, score, reason, language in zip(
            texts, scores, screening.reasons, screening.languages, strict=True
        )
    ]


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out} exists and is not a folder")


@contextmanager
def _failing_cleanly() -> Iterator[None]:
    """Turn bad input and a failed export gate into one error line and exit code 1."""
    try:
        yield
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from exc
    except RuntimeError as exc:
        from marketsense.modelkit.onnx_export import ParityError

        if isinstance(exc, ParityError):
            raise fail(f"{exc}; nothing was written") from exc
        raise


@contextmanager
def _steps() -> Iterator[Callable[[str], None]]:
    """A live status line for the running step; each finished step stays on screen, timed."""
    current: list[tuple[str, float]] = []

    def finish() -> None:
        if current:
            text, started = current.pop()
            console.print(f"[green]done[/] {escape(text)} ({time.perf_counter() - started:.1f} s)")

    with console.status("starting") as status:

        def step(text: str) -> None:
            finish()
            current.append((text, time.perf_counter()))
            status.update(escape(text))

        yield step
        finish()


def _summarise(manifest: SentimentManifest, out: Path) -> None:
    metrics = manifest.metrics
    console.print(
        f"wrote {escape(str(out))}: {manifest.name} v{manifest.version}, labels "
        f"{', '.join(manifest.labels)}; held-out accuracy "
        f"{metrics['heldout_accuracy']:.3f} fp32, {metrics['heldout_accuracy_int8']:.3f} int8",
        soft_wrap=True,
    )
    console.print_json(json.dumps(metrics))
