"""The AsyncAPI catalogue generated from the event models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from marketsense.common.asyncapi import asyncapi_document
from marketsense.common.bus import DLQ_SUFFIX
from marketsense.common.events import PAYLOAD_TYPES

REPO = Path(__file__).resolve().parents[3]


def _resolve(document: dict[str, Any], ref: str) -> object:
    """Follow a local JSON pointer such as `#/components/schemas/Envelope`."""
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    node: object = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref} does not resolve: {part!r} is under a non-object"
        assert part in node, f"{ref} does not resolve: no {part!r}"
        node = node[part]
    return node


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_asyncapi_lists_a_channel_and_a_dead_letter_channel_per_event_type() -> None:
    document = asyncapi_document()
    channels = document["channels"]

    expected = {p.topic for p in PAYLOAD_TYPES.values()}
    assert set(channels) == expected | {t + DLQ_SUFFIX for t in expected}
    for payload in PAYLOAD_TYPES.values():
        name = payload.__name__
        for address in (payload.topic, payload.topic + DLQ_SUFFIX):
            assert channels[address]["address"] == address
            assert channels[address]["messages"] == {
                name: {"$ref": f"#/components/messages/{name}"}
            }
        assert name in document["components"]["schemas"]
        assert document["components"]["messages"][name]["name"] == payload.event_type
    assert "x-dlq-error" in channels["raw.ready.dlq"]["description"]


def test_every_asyncapi_reference_resolves() -> None:
    document = asyncapi_document()
    refs = _refs(document)

    assert len(refs) > len(PAYLOAD_TYPES) * 4  # channels, operations, messages and schemas
    for ref in refs:
        assert isinstance(_resolve(document, ref), dict)


def test_asyncapi_json_in_docs_is_up_to_date() -> None:
    path = REPO / "docs" / "asyncapi.json"
    expected = json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"
    actual = path.read_text() if path.exists() else ""
    assert actual == expected, (
        f"{path.relative_to(REPO)} is stale: regenerate it with "
        "`uv run marketsense events asyncapi --out docs/asyncapi.json`"
    )
