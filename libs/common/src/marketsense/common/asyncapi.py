"""The event catalogue as an AsyncAPI 3 document, generated from the event models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from marketsense.common.bus import DLQ_SUFFIX
from marketsense.common.events import PAYLOAD_TYPES, Envelope

DLQ_HEADERS = {
    "x-dlq-original-topic": "Topic the record was read from.",
    "x-dlq-original-partition": "Partition the record was read from.",
    "x-dlq-original-offset": "Offset of the record in that partition.",
    "x-dlq-error": "Error class and message that sent the record here.",
    "x-dlq-attempts": "Handler attempts made (0 when the record could not be parsed).",
    "x-dlq-failed-at": "When the record was dead-lettered (ISO 8601, UTC).",
}


def asyncapi_document() -> dict[str, Any]:
    """Channels, messages and schemas for every event type, plus its dead-letter channel."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Envelope, "validation")]
    models += [(p, "validation") for p in PAYLOAD_TYPES.values()]
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = defs["$defs"]
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event_type, payload in PAYLOAD_TYPES.items():
        name = payload.__name__
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": payload.description,
            "contentType": "application/json",
            "correlationId": {"location": "$message.payload#/run_id"},
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "schema_version": {"const": payload.schema_version},
                            "payload": {"$ref": f"#/components/schemas/{name}"},
                        },
                    },
                ]
            },
            "bindings": {
                "kafka": {"key": {"type": "string", "description": "symbol, else run id"}}
            },
        }
        channels[payload.topic] = {
            "address": payload.topic,
            "description": payload.description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        channels[payload.topic + DLQ_SUFFIX] = {
            "address": payload.topic + DLQ_SUFFIX,
            "description": (
                f"Records of {payload.topic} that could not be handled, as they were, "
                "with headers: " + "; ".join(f"{k}: {v}" for k, v in DLQ_HEADERS.items())
            ),
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{payload.topic}"},
            "messages": [{"$ref": f"#/channels/{payload.topic}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "marketsense events",
            "version": "1.0.0",
            "description": (
                "Events between marketsense services. Every event is an Envelope whose payload "
                "carries object references (URI, sha256, size) or keys, never data sets. Topic "
                "names get the deployment's MARKETSENSE_TOPIC_PREFIX in front."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
