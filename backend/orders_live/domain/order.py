"""The order: what clients send, what is stored, what goes on the wire."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

Status = Literal["pending", "shipped", "delivered"]
STATUSES: tuple[Status, ...] = get_args(Status)


def known_status(value: Any) -> Status | None:
    """``value`` as a Status, or None when it is none (a stored row or document, or a change's
    pre-image, read as the database has it)."""
    for known in STATUSES:
        if value == known:
            return known
    return None


# What no name may hold, so that a name is text a person can read wherever it is shown: the C0
# controls (NUL, TAB, LF, CR, ESC …), DEL and the C1 controls; lone surrogates (not text, and
# not storable as UTF-8); the invisible marks that reorder the text around them (ALM U+061C,
# LRM/RLM U+200E/F, the bidirectional embeddings and overrides U+202A–E, the isolates
# U+2066–9); and the line and paragraph separators U+2028/9. PostgreSQL's table refuses the
# same (sources/postgres/sql/schema.sql, ``orders_*_readable``).
UNREADABLE = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_UNREADABLE = re.compile(f"[{UNREADABLE}]")
READABLE_RULE = "must be readable text: no control characters, lone surrogates or bidirectional controls"


def unreadable(text: str) -> str | None:
    """Why ``text`` is not a readable name ("U+001B at character 1"), or None if it is."""
    found = _UNREADABLE.search(text)
    return None if found is None else f"U+{ord(found.group()):04X} at character {found.start() + 1}"


def _readable(value: Any) -> Any:
    """Checked before whitespace is stripped: a control character at either end is refused too."""
    problem = unreadable(value) if isinstance(value, str) else None
    if problem is not None:
        raise PydanticCustomError("unreadable_text", f"{READABLE_RULE} (found {problem})")
    return value


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), BeforeValidator(_readable)
]


class UnreadableName(ValueError):
    """A write the database refused because a name it keeps is not readable text: one stored
    before the rule (or by another writer), which the write must replace."""

    def __init__(self, field: str) -> None:
        super().__init__(f"the stored {field} is not readable text")
        self.fields = {field: f"{READABLE_RULE}; the stored one is not, so give a new one"}


MAX_ID = 2**63 - 1  # order ids are positive bigints


def positive_int(text: str, largest: int = MAX_ID) -> int | None:
    """``text`` as an integer in 1…``largest``, else None. Checked before ``int()``, which takes
    non-ASCII digits ("²") and refuses numbers of more than 4,300 digits."""
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit()) or not digits or len(digits) > len(str(largest)):
        return None
    value = int(digits)
    return value if value <= largest else None


# An order as it travels in JSON: {"id", "customer_name", "product_name", "status",
# "updated_at" (ISO-8601 UTC, milliseconds, "Z"), "version"}.
OrderJson = dict[str, Any]


def utc_now() -> datetime:
    """Now, in UTC, truncated to milliseconds (what a BSON date can hold)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a trailing Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset():
        moment = moment.astimezone(UTC)
    # isoformat: a third faster than strftime (twice for each change delivered), and a year
    # before 1000 keeps its four digits
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OrderCreate(_Strict):
    """Body of POST /api/orders."""

    customer_name: Name
    product_name: Name
    status: Status = "pending"


class OrderPatch(_Strict):
    """Body of PATCH /api/orders/{id}: any of the three fields, at least one."""

    customer_name: Name | None = None
    product_name: Name | None = None
    status: Status | None = None

    def changes(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(exclude_none=True).items()}


class Order(_Strict):
    """A stored order, as the service hands it out."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    id: int = Field(ge=1)
    customer_name: str
    product_name: str
    status: Status
    updated_at: datetime
    version: int = Field(ge=1)

    @field_validator("updated_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def to_json(self) -> OrderJson:
        return {
            "id": self.id,
            "customer_name": self.customer_name,
            "product_name": self.product_name,
            "status": self.status,
            "updated_at": iso_millis(self.updated_at),
            "version": self.version,
        }
