"""Public keys for verifying JWTs, from a JWKS file (RFC 7517), chosen by ``kid``.

Only asymmetric keys are taken (RS256, ES256, EdDSA): a shared secret has no place in a file of
public keys, and taking one would let a token signed with a public key pass as HMAC. PyJWT
reads the keys and says which algorithm each is for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jwt

ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})


@dataclass(frozen=True)
class KeySet:
    """The keys by ``kid`` (a key without one is found only when it is the only key)."""

    keys: dict[str, jwt.PyJWK]
    unnamed: jwt.PyJWK | None = None

    def find(self, kid: object) -> jwt.PyJWK | None:
        if isinstance(kid, str):
            return self.keys.get(kid)
        if kid is None and len(self.keys) + (self.unnamed is not None) == 1:
            return self.unnamed or next(iter(self.keys.values()))
        return None

    def __len__(self) -> int:
        return len(self.keys) + (self.unnamed is not None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeySet) and _fingerprint(self) == _fingerprint(other)

    def __hash__(self) -> int:
        return hash(_fingerprint(self))


def _fingerprint(keys: KeySet) -> tuple[tuple[str, str], ...]:
    named = [(kid, key.algorithm_name) for kid, key in keys.keys.items()]
    return tuple(sorted(named)) + ((("", keys.unnamed.algorithm_name),) if keys.unnamed else ())


EMPTY = KeySet({})


def parse_key_set(raw: bytes) -> KeySet:
    """A JWKS document → KeySet; ValueError with the reason when it holds no usable key."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWKS: no "keys" list')
    keys: dict[str, jwt.PyJWK] = {}
    unnamed: list[jwt.PyJWK] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") == "oct" or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            continue
        if key.algorithm_name not in ALGORITHMS:
            continue
        kid = entry.get("kid")
        if isinstance(kid, str) and kid:
            keys[kid] = key
        else:
            unnamed.append(key)
    if not keys and not unnamed:
        raise ValueError("no usable RS256, ES256 or EdDSA signing key")
    return KeySet(keys, unnamed[0] if len(unnamed) == 1 and not keys else None)
