"""Who is asking, and what they may do: an identity's role, its scope and its rights.

An identity comes from a verified JWT (``role`` and ``customer`` claims), from a shared token
(the read token reads like a ``viewer``; the write token writes like ``staff`` and may also
append agent records), or from an open service (every right). Its rights are fixed when it is
established; a refresh may extend ``exp`` but never change ``sub``, ``role`` or ``customer``.

The rules on orders live here, so that every path asks the same questions: ``may_create``,
``may_update`` and ``may_delete`` raise ``Forbidden`` with a message and, where a field is at
fault, the field. A customer's scope (``customer``) is applied by the hub's rooms and the
stores' queries, never by checking each delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from orders_live.domain.order import OrderCreate, OrderPatch

Role = Literal["viewer", "customer", "staff", "agent"]
ROLES: tuple[Role, ...] = get_args(Role)
Origin = Literal["jwt", "shared", "open"]  # how the identity was established


class Forbidden(Exception):
    """The identity may not do this (403 ``forbidden``); ``fields`` names what is at fault."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message, self.fields = message, dict(fields or {})


@dataclass(frozen=True, slots=True)
class Identity:
    """``sub``: who (limits count per ``sub``; revocation matches it or ``jti``). ``customer``:
    the only customer whose orders a ``customer`` sees. ``exp``: unix seconds, None for tokens
    that never expire (shared tokens, an open service)."""

    sub: str
    role: Role
    origin: Origin
    customer: str | None = None
    exp: float | None = None
    jti: str | None = None
    appends_actions: bool = False  # the agent, or the shared write token

    @property
    def scope(self) -> str | None:
        """The customer this identity is confined to, or None for every order."""
        return self.customer if self.role == "customer" else None

    @property
    def writes_orders(self) -> bool:
        return self.role in ("staff", "customer")

    def same_holder(self, other: Identity) -> bool:
        """A refresh keeps the holder: the same ``sub``, ``role`` and ``customer``."""
        return (self.sub, self.role, self.customer, self.origin) == (
            other.sub,
            other.role,
            other.customer,
            other.origin,
        )

    def may_create(self, data: OrderCreate) -> None:
        self._may_write()
        if self.scope is None:
            return
        fields = {}
        if data.customer_name != self.scope:
            fields["customer_name"] = f"a customer creates orders only for itself ({self.scope})"
        if data.status != "pending":
            fields["status"] = "a customer may not set an order's status"
        if fields:
            raise Forbidden("a customer creates only its own pending orders", fields)

    def may_update(self, patch: OrderPatch) -> None:
        """The fields of ``patch`` this identity may change (whose order it is, the store checks)."""
        self._may_write()
        if self.scope is None:
            return
        fields = {}
        if patch.status is not None:
            fields["status"] = "a customer may not change an order's status"
        if patch.customer_name is not None and patch.customer_name != self.scope:
            fields["customer_name"] = "a customer may not give an order to another customer"
        if fields:
            raise Forbidden("a customer may change only its own orders' product", fields)

    def may_delete(self) -> None:
        self._may_write()
        if self.scope is not None:
            raise Forbidden("a customer may not delete orders")

    def may_append_actions(self) -> None:
        if not self.appends_actions:
            raise Forbidden(f"only the agent appends agent action records, not a {self.role}")

    def _may_write(self) -> None:
        if not self.writes_orders:
            raise Forbidden(f"a{'n' if self.role == 'agent' else ''} {self.role} may not write orders")


OPEN = Identity(sub="anonymous", role="staff", origin="open", appends_actions=True)
