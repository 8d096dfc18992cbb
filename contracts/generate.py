"""Write the JSON Schema of every event version and the AsyncAPI 3 document of the topics.

`make contracts` runs this; tests/test_contracts.py fails when the committed files and
the models disagree, so a published schema cannot drift silently. Every version ever
published keeps its schema file and its AsyncAPI message (registry.PUBLISHED_CLASSES), not
only the current one: an older version is still on the log and consumers upcast it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from contracts.events import Event
from contracts.registry import (
    BY_TYPE,
    DEAD_LETTER_TOPIC,
    PRODUCING_SERVICES,
    PUBLISHED_CLASSES,
    UPCASTERS,
    topic_for_service,
)

CONTRACTS_DIR = Path(__file__).parent
SCHEMAS_DIR = CONTRACTS_DIR / "schemas"
ASYNCAPI_FILE = CONTRACTS_DIR / "asyncapi.yaml"

CLOUDEVENT_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0, structured JSON mode; extensions correlationid, "
    "causationid, policyversion, actor, and the distributed-tracing extension's "
    "traceparent and tracestate (W3C Trace Context).",
    "required": ["id", "source", "type", "specversion", "time", "subject", "data"],
    "properties": {
        "id": {"type": "string"},
        "source": {"type": "string"},
        "type": {"type": "string"},
        "specversion": {"const": "1.0"},
        "time": {"type": "string", "format": "date-time"},
        "subject": {"type": "string", "description": "The person's opaque id."},
        "datacontenttype": {"const": "application/json"},
        "dataschema": {"type": "string"},
        "correlationid": {"type": "string"},
        "causationid": {"type": "string"},
        "policyversion": {"type": "string"},
        "actor": {
            "type": "string",
            "description": "Who made the change, role:user_id from the caller's verified "
            "token; absent on an event a consumer emitted in reaction to another.",
        },
        "traceparent": {
            "type": "string",
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        },
        "tracestate": {"type": "string"},
    },
}


def schema_of(event_cls: type[Event]) -> dict[str, Any]:
    schema = event_cls.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:pb-journey:schema:{event_cls.type}"
    schema["title"] = event_cls.type
    return schema


def schema_file(event_cls: type[Event]) -> Path:
    return SCHEMAS_DIR / f"{event_cls.type}.json"


def render_schema(event_cls: type[Event]) -> str:
    return json.dumps(schema_of(event_cls), indent=2, sort_keys=True) + "\n"


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for service in PRODUCING_SERVICES:
        topic = topic_for_service(service)
        own = [cls for cls in PUBLISHED_CLASSES if cls.service == service]
        channel_messages = {}
        for cls in own:
            name = cls.__name__
            messages[name] = {
                "name": name,
                "title": cls.type,
                "summary": (cls.__doc__ or name).strip().splitlines()[0],
                **_superseded_note(cls),
                "contentType": "application/cloudevents+json",
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/CloudEvent"},
                        {
                            "properties": {
                                "type": {"const": cls.type},
                                "data": {"$ref": f"./schemas/{cls.type}.json"},
                            }
                        },
                    ]
                },
            }
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[topic] = {
            "address": topic,
            "description": f"Events the {service} service publishes; key = the person's id.",
            "messages": channel_messages,
        }
        operations[f"publish-{service}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [
                {"$ref": f"#/channels/{topic}/messages/{cls.__name__}"}
                for cls in own
                if cls.type in BY_TYPE  # an older version stays on the channel, never sent
            ],
        }
    channels[DEAD_LETTER_TOPIC] = {
        "address": DEAD_LETTER_TOPIC,
        "description": "Records a consumer could not apply, with the reason.",
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "required": ["reason", "consumer", "topic", "partition", "offset", "value_base64"],
            "properties": {
                "reason": {"type": "string"},
                "consumer": {"type": "string"},
                "topic": {"type": "string"},
                "partition": {"type": "integer"},
                "offset": {"type": "integer"},
                "key": {"type": "string"},
                "value_base64": {"type": "string"},
            },
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "PB Journey events",
            "version": "1.0.0",
            "description": "One topic per producing service; every message a CloudEvent.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {"CloudEvent": CLOUDEVENT_ENVELOPE}, "messages": messages},
    }


def _superseded_note(cls: type[Event]) -> dict[str, str]:
    """A description for an older version: what supersedes it."""
    if cls.type in BY_TYPE:
        return {}
    newer = UPCASTERS[cls.type][0]
    return {"description": f"Superseded by {newer}: no longer published; consumers upcast it."}


def render_asyncapi() -> str:
    header = "# Generated by `make contracts` from contracts/events.py; do not edit by hand.\n"
    return header + yaml.safe_dump(asyncapi_document(), sort_keys=False, width=100)


def main() -> None:
    SCHEMAS_DIR.mkdir(exist_ok=True)
    for cls in PUBLISHED_CLASSES:
        path = schema_file(cls)
        if path.exists() and path.read_text() != render_schema(cls):
            raise SystemExit(
                f"{path.name} is published and differs from the model: add a new version "
                "and an upcaster instead of editing it"
            )
        path.write_text(render_schema(cls))
    ASYNCAPI_FILE.write_text(render_asyncapi())
    print(f"wrote {len(PUBLISHED_CLASSES)} schemas and {ASYNCAPI_FILE.name}")


if __name__ == "__main__":
    main()
