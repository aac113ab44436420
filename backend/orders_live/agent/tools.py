"""The agent's tools: typed arguments (pydantic models, shown to the model as JSON schemas).

Two tools record a message (nothing is sent anywhere): ``draft_follow_up`` and
``notify_customer``. Two only read, through the service's REST API with fixed fields:
``find_orders`` and ``get_order``. No tool writes an order, and no argument reaches a
database as a query: statuses are one of three words, times are durations, customer names
are matched here, in the agent, against the pages the REST API returns.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from orders_live.domain.order import MAX_ID, Status

MESSAGE_MAX = 1_000  # characters in a recorded message
ACTION_TOOLS = ("draft_follow_up", "notify_customer")
READ_TOOLS = ("find_orders", "get_order")

OrderId = Annotated[int, Field(ge=1, le=MAX_ID, description="the order's id")]
Message = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MESSAGE_MAX),
    Field(description=f"the message, plain text, at most {MESSAGE_MAX} characters"),
]
_DURATION = re.compile(r"\s*(\d{1,6}(?:\.\d{1,3})?)\s*(s|m|h|d|w)\s*")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``"90m"``, ``"36h"``, ``"1d"``, ``"2w"``, ``"30s"`` → seconds; ValueError otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError("a duration is a number and one of s, m, h, d, w, as 36h or 1d")
    return float(match.group(1)) * _UNIT[match.group(2)]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DraftFollowUp(_Arguments):
    """Record a follow-up message drafted for the customer of an order that is still pending.
    Nothing is sent: a person reviews drafts."""

    order_id: OrderId
    message: Message


class NotifyCustomer(_Arguments):
    """Record a notification to the customer of an order (for example that it has shipped).
    Nothing is emailed: the notification is recorded."""

    order_id: OrderId
    message: Message


class FindOrders(_Arguments):
    """Find orders (read-only): by status, by customer name (case-insensitive, part of the
    name), and not changed for at least ``older_than``. Newest first."""

    status: Status | None = Field(None, description="pending, shipped or delivered; omit for any")
    customer: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = Field(
        None, description="part of the customer's name, any case"
    )
    older_than: str | None = Field(None, description="not changed for at least this long: 30m, 36h, 1d, 2w")
    limit: int = Field(20, ge=1, le=100, description="at most this many orders (1-100)")

    @field_validator("older_than")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class GetOrder(_Arguments):
    """Read one order by id (read-only)."""

    id: OrderId


ARGUMENTS: dict[str, type[_Arguments]] = {
    "draft_follow_up": DraftFollowUp,
    "notify_customer": NotifyCustomer,
    "find_orders": FindOrders,
    "get_order": GetOrder,
}


def tool_schemas(names: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """The Chat Completions ``tools`` for ``names``: each model's JSON schema."""
    schemas = []
    for name in names:
        model = ARGUMENTS[name]
        parameters = model.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
        schemas.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": " ".join((model.__doc__ or name).split()),
                    "parameters": parameters,
                },
            }
        )
    return schemas


ToolName = Literal["draft_follow_up", "notify_customer", "find_orders", "get_order"]
