"""The agent's action log: what the agent sends to be recorded, a record as stored, and the
filters a reader may give. Every store keeps the same rules (``docs/agent.md``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from orders_live.domain.order import MAX_ID

ActionKind = Literal["action", "dry_run", "refusal", "model_error", "no_action"]
KINDS: tuple[ActionKind, ...] = get_args(ActionKind)
Trigger = Literal["pending_too_long", "shipped", "question"]
TRIGGERS: tuple[Trigger, ...] = get_args(Trigger)
# Kinds that record a tool's message: they name the tool, the message and the order's version.
WITH_MESSAGE: frozenset[ActionKind] = frozenset({"action", "dry_run"})
NEEDED_WITH_MESSAGE = ("tool", "message", "order_id", "order_version")

MAX_ARGUMENTS_CHARS = 4_000  # the arguments' compact JSON encoding
MAX_ARGUMENTS_DEPTH = 32  # nesting, well inside what every store and encoder takes
MAX_MESSAGE, MAX_REASON, MAX_MODEL = 2_000, 1_000, 200

Tool = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")]


class AgentActionJson(TypedDict):
    """A record as stored and as it travels in JSON."""

    seq: int
    kind: ActionKind
    trigger: Trigger
    order_id: int | None
    order_version: int | None
    tool: str | None
    arguments: dict[str, Any]
    message: str | None
    reason: str | None
    model: str | None
    customer_name: str | None  # the order's customer when the record was appended (set by the service)
    recorded_at: str  # ISO-8601 UTC, milliseconds, "Z"


class InvalidAgentAction(ValueError):
    """A new record that breaks the rules; ``fields`` says which field and why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("the record has invalid fields")
        self.fields = fields


def _plain_text(value: str) -> str:
    """Text every store takes: no NUL (PostgreSQL's text refuses it), valid UTF-8 (no lone
    surrogates, which JSON's \\ud800 escapes can produce)."""
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid_text", "must be valid Unicode text (no lone surrogates)") from None
    return value


def _check_json(value: Any, depth: int) -> None:
    if depth > MAX_ARGUMENTS_DEPTH:
        raise PydanticCustomError("too_deep", f"must nest at most {MAX_ARGUMENTS_DEPTH} levels")
    if isinstance(value, str):
        _plain_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("not_json", "numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain_text(key)
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


def encode_arguments(arguments: dict[str, Any]) -> str:
    """The arguments as compact JSON: what the stores keep and what the limit counts."""
    return json.dumps(arguments, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class NewAgentAction(BaseModel):
    """A record to append: every field of a record but ``seq`` and ``recorded_at``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    kind: ActionKind
    trigger: Trigger
    order_id: int | None = Field(None, ge=1, le=MAX_ID)
    order_version: int | None = Field(None, ge=1, le=MAX_ID)
    tool: Tool | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    message: str | None = Field(None, max_length=MAX_MESSAGE)
    reason: str | None = Field(None, max_length=MAX_REASON)
    model: str | None = Field(None, max_length=MAX_MODEL)

    @field_validator("message", "reason", "model")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _plain_text(value)

    @field_validator("arguments")
    @classmethod
    def _arguments(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value, 1)
        try:
            encoded = encode_arguments(value)
        except (TypeError, ValueError):
            raise PydanticCustomError("not_json", "must be a JSON object") from None
        if len(encoded) > MAX_ARGUMENTS_CHARS:
            raise PydanticCustomError("too_long", f"must encode to at most {MAX_ARGUMENTS_CHARS} characters of JSON")
        return value

    @model_validator(mode="after")
    def _complete(self) -> NewAgentAction:
        if self.kind in WITH_MESSAGE:
            missing = [name for name in NEEDED_WITH_MESSAGE if getattr(self, name) is None]
            if self.message is not None and not self.message.strip():
                missing.append("message")
            if missing:
                raise PydanticCustomError(
                    "needed_for_kind", "required for kind {kind}", {"kind": self.kind, "fields": ",".join(missing)}
                )
        return self

    @property
    def unique_key(self) -> tuple[Trigger, int, int] | None:
        """(trigger, order_id, order_version) for an ``action``: at most one record has it."""
        if self.kind != "action" or self.order_id is None or self.order_version is None:
            return None
        return (self.trigger, self.order_id, self.order_version)


def parse_new_action(payload: Any) -> NewAgentAction:
    """A new record from decoded JSON; raises InvalidAgentAction with a message per field."""
    try:
        return NewAgentAction.model_validate(payload)
    except ValidationError as exc:
        raise InvalidAgentAction(_fields_of(exc)) from None


def _fields_of(error: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in error.errors():
        if item["type"] == "needed_for_kind":
            context = item.get("ctx") or {}
            for name in str(context.get("fields", "")).split(","):
                fields.setdefault(name, f"required for kind {context.get('kind')}")
            continue
        name = ".".join(str(part) for part in item["loc"][:1]) or "body"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "literal_error" and name == "kind":
            message = f"must be one of {', '.join(KINDS)}"
        elif item["type"] == "literal_error" and name == "trigger":
            message = f"must be one of {', '.join(TRIGGERS)}"
        elif item["type"] == "string_pattern_mismatch":
            message = "must be 1 to 64 of a-z and _"
        elif item["type"] == "missing":
            message = "required"
        fields.setdefault(name, message)
    return fields


@dataclass(frozen=True, slots=True)
class ActionFilter:
    """Exact matches a reader asks for; None matches anything. Typed values only: a store
    compares them, never reads them as query syntax."""

    kind: ActionKind | None = None
    trigger: Trigger | None = None
    order_id: int | None = None
    order_version: int | None = None
    customer: str | None = None  # a customer's scope: only the records about its orders

    def matches(self, record: AgentActionJson) -> bool:
        return (
            (self.customer is None or record["customer_name"] == self.customer)
            and (self.kind is None or record["kind"] == self.kind)
            and (self.trigger is None or record["trigger"] == self.trigger)
            and (self.order_id is None or record["order_id"] == self.order_id)
            and (self.order_version is None or record["order_version"] == self.order_version)
        )


EVERY_ACTION = ActionFilter()
