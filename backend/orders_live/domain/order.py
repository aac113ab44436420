"""The order: what clients send, what is stored, what goes on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Status = Literal["pending", "shipped", "delivered"]
STATUSES: tuple[Status, ...] = get_args(Status)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

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
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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
