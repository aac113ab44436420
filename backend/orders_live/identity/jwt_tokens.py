"""JWTs → identities, with PyJWT: an HS256 secret, or public keys from a JWKS file by ``kid``.

Required: ``sub``, ``exp`` and the role claim (``role`` by default); a ``customer`` role also
needs the customer claim (``customer`` by default). ``iss`` and ``aud`` are checked when
configured. ``alg`` must be the one the key is for: never ``none``, never HMAC with a public key.
Every refusal says what was wrong: 401 ``unauthorized`` when the token does not prove who it
stands for, 403 ``forbidden`` when it does but names no usable role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from orders_live.domain.identity import ROLES, Identity
from orders_live.identity.key_set import KeySet
from orders_live.identity.refusals import forbidden, unauthorized

MAX_SUB = 256
MAX_CUSTOMER = 200  # as long as an order's customer_name may be
MAX_TOKEN = 8_192  # characters: a header would not hold more


@dataclass(frozen=True, slots=True)
class JwtRules:
    """What a token must satisfy besides its signature."""

    issuer: str | None = None
    audience: str | None = None
    role_claim: str = "role"
    customer_claim: str = "customer"
    leeway: float = 0.0


class JwtVerifier:
    """``secret`` (HS256), or ``keys`` (a callable giving the current KeySet: it may change)."""

    def __init__(self, rules: JwtRules, secret: str | None = None, keys: Any = None) -> None:
        if (secret is None) == (keys is None):
            raise ValueError("give a secret or a key set, not both")
        self.rules, self.secret, self._keys = rules, secret, keys

    def verify(self, token: str) -> Identity:
        """The identity ``token`` stands for; AccessDenied saying why not."""
        if len(token) > MAX_TOKEN:
            raise unauthorized("the token is too long to be a JWT")
        if not token.isascii():  # a JWT is base64url and dots; PyJWT would fail to encode a lone surrogate
            raise unauthorized("the token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorized("the token is not a JWT") from None
        algorithm = header.get("alg")
        key, allowed = self._key_for(header)
        if not isinstance(algorithm, str) or algorithm != allowed:
            shown = algorithm if isinstance(algorithm, str) else repr(algorithm)
            raise unauthorized(f"the token's algorithm {shown} is not allowed (only {allowed})")
        claims = self._decode(token, key, allowed)
        return self.identity(claims)

    def _key_for(self, header: dict[str, Any]) -> tuple[Any, str]:
        if self.secret is not None:
            return self.secret, "HS256"
        keys: KeySet = self._keys()
        found = keys.find(header.get("kid"))
        if found is None:
            kid = header.get("kid")
            raise unauthorized(f"the token's key id {kid!r} is not known" if kid else "the token names no key id (kid)")
        return found.key, found.algorithm_name

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        rules = self.rules
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=rules.issuer,
                audience=rules.audience,
                leeway=rules.leeway,
                options={"require": ["exp", "sub"], "verify_aud": rules.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise unauthorized("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidIssuerError:
            raise unauthorized(f"the token's issuer is not {rules.issuer}") from None
        except jwt.InvalidAudienceError:
            raise unauthorized(f"the token's audience is not {rules.audience}") from None
        except jwt.ImmatureSignatureError:
            raise unauthorized("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.PyJWTError as exc:
            raise unauthorized(f"the token is not valid ({exc})") from None
        return claims

    def identity(self, claims: dict[str, Any]) -> Identity:
        """Claims already verified → Identity; AccessDenied for claims that make none."""
        rules = self.rules
        sub = claims.get("sub")
        if not isinstance(sub, str) or not 1 <= len(sub) <= MAX_SUB:
            raise unauthorized(f"the token's sub claim must be a string of 1 to {MAX_SUB} characters")
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise unauthorized("the token's exp claim must be a number")
        role = claims.get(rules.role_claim)
        if role is None:
            raise forbidden(f"the token has no {rules.role_claim} claim")
        found = next((known for known in ROLES if known == role), None)
        if found is None:
            raise forbidden(f"the token's role {role!r} is not one of {', '.join(ROLES)}")
        customer = None
        if found == "customer":
            customer = _customer(claims.get(rules.customer_claim), rules.customer_claim)
        jti = claims.get("jti")
        return Identity(
            sub=sub,
            role=found,
            origin="jwt",
            customer=customer,
            exp=float(exp),
            jti=jti if isinstance(jti, str) and jti else None,
            appends_actions=found == "agent",
        )


def _customer(value: object, claim: str) -> str:
    if value is None:
        raise forbidden(f"a customer token needs a {claim} claim")
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CUSTOMER or value != value.strip() or "\x00" in value:
        raise forbidden(
            f"the token's {claim} claim must be a customer name: 1 to {MAX_CUSTOMER} characters, no surrounding spaces"
        )
    return value
