"""Minting tokens: for ``orders-live token``, the demo, the bench and the tests. An operator's
identity provider mints the real ones; this signs with the HS256 secret the service verifies
with, or with a private key (PEM: RSA, P-256 or Ed25519) whose public half is in the JWKS."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from orders_live.domain.identity import ROLES, Role
from orders_live.identity.jwt_tokens import JwtRules

DEFAULT_RULES = JwtRules()


def algorithm_for(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ValueError("the private key must be RSA, EC P-256 or Ed25519")


def load_private_key(path: Path) -> Any:
    key = load_pem_private_key(path.read_bytes(), password=None)
    algorithm_for(key)  # refuse other kinds now, not at signing
    return key


def mint_token(
    role: Role,
    sub: str | None = None,
    customer: str | None = None,
    ttl: float = 900.0,
    *,
    secret: str | None = None,
    private_key: Any = None,
    kid: str | None = None,
    rules: JwtRules = DEFAULT_RULES,
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed JWT for ``role`` (and ``customer``), valid ``ttl`` seconds from now, with the
    claims ``rules`` (the service's) name and check: the role and customer claims, iss, aud."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "customer" and not customer:
        raise ValueError("a customer token needs a customer")
    if (secret is None) == (private_key is None):
        raise ValueError("give a secret or a private key")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub or (f"customer:{customer}" if role == "customer" else f"{role}:{uuid.uuid4().hex[:8]}"),
        rules.role_claim: role,
        "iat": now,
        "exp": now + max(1, round(ttl)),
        "jti": uuid.uuid4().hex,
    }
    if customer is not None:
        claims[rules.customer_claim] = customer
    if rules.issuer is not None:
        claims["iss"] = rules.issuer
    if rules.audience is not None:
        claims["aud"] = rules.audience
    claims.update(extra or {})
    headers = {"kid": kid} if kid else None
    if secret is not None:
        return jwt.encode(claims, secret, algorithm="HS256", headers=headers)
    return jwt.encode(claims, private_key, algorithm=algorithm_for(private_key), headers=headers)


def parse_ttl(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    text = text.strip().lower()
    unit = units.get(text[-1:])
    number = text[:-1] if unit is not None else text
    try:
        value = float(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (say 90s, 15m, 2h or 1d)") from None
    if not 0 < value <= 366 * 86_400:
        raise ValueError("a token's lifetime must be between 1 second and a year")
    return value
