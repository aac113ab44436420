"""Fast tier: identities without a service: JWT verification (an HS256 secret, a JWKS file that
rotates), revocation, stream tickets, refreshes, the shared tokens' old semantics, the roles'
rights on orders, the per-identity limits, the client's token sources and minting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from orders_live.client.tokens import REFRESH_LEAD, REFRESH_SHARE, TokenFile, Tokens, token_source
from orders_live.domain.identity import OPEN, ROLES, Forbidden, Identity
from orders_live.domain.order import OrderCreate, OrderPatch
from orders_live.identity import limits as limits_module
from orders_live.identity.authenticator import Authenticator, IdentityOptions
from orders_live.identity.jwt_tokens import MAX_CUSTOMER, JwtRules, JwtVerifier
from orders_live.identity.key_set import KeySet, parse_key_set
from orders_live.identity.limits import IdentityLimits, RateLimit, RateLimits
from orders_live.identity.minting import algorithm_for, load_private_key, mint_token, parse_ttl
from orders_live.identity.refusals import AccessDenied
from orders_live.identity.revocation import is_revoked, parse_revoked
from orders_live.identity.shared_tokens import ANONYMOUS_READER, READER, WRITER, SharedTokens
from orders_live.identity.tickets import TTL, StreamTickets

pytestmark = pytest.mark.fast

SECRET = "an-hs256-secret-of-at-least-32-characters"
OTHER_SECRET = "another-hs256-secret-of-32-characters-or-more"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(role: str | None = "staff", **extra: Any) -> dict[str, Any]:
    """Claims of a token good for five minutes; ``name=None`` leaves a claim out."""
    now = int(time.time())
    found: dict[str, Any] = {"sub": f"{role}:1", "role": role, "iat": now, "exp": now + 300, "jti": "jti-1"}
    found.update(extra)
    return {name: value for name, value in found.items() if value is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


def refusal(verify: Callable[[], object]) -> AccessDenied:
    with pytest.raises(AccessDenied) as caught:
        verify()
    return caught.value


def hs_verifier(**rules: Any) -> JwtVerifier:
    return JwtVerifier(JwtRules(**rules), secret=SECRET)


# --- JWTs with an HS256 secret ---------------------------------------------------------------


def test_a_good_staff_token_gives_its_sub_role_exp_and_jti() -> None:
    payload = claims("staff", sub="staff:ada")
    identity = hs_verifier().verify(hs256(payload))
    assert identity == Identity(
        sub="staff:ada", role="staff", origin="jwt", customer=None, exp=float(payload["exp"]), jti="jti-1"
    )
    assert not identity.appends_actions


def test_only_an_agent_token_appends_actions() -> None:
    verifier = hs_verifier()
    appends = {role: verifier.verify(hs256(claims(role, customer="Ada"))).appends_actions for role in ROLES}
    assert appends == {"viewer": False, "customer": False, "staff": False, "agent": True}


def test_a_customer_token_gives_its_customer_as_the_scope() -> None:
    identity = hs_verifier().verify(hs256(claims("customer", customer="Ada Lovelace")))
    assert (identity.role, identity.customer, identity.scope) == ("customer", "Ada Lovelace", "Ada Lovelace")


def test_a_token_without_jti_has_none() -> None:
    assert hs_verifier().verify(hs256(claims(jti=None))).jti is None


def test_a_string_that_is_not_a_jwt_is_refused_as_such() -> None:
    denied = refusal(lambda: hs_verifier().verify("read-secret-1"))
    assert (denied.status, denied.code, denied.message) == (401, "unauthorized", "the token is not a JWT")


def test_a_token_far_too_long_is_refused_before_parsing() -> None:
    denied = refusal(lambda: hs_verifier().verify("x" * 10_000))
    assert (denied.status, denied.message) == (401, "the token is too long to be a JWT")


def test_an_unsigned_alg_none_token_is_refused() -> None:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims("staff")).encode())
    denied = refusal(lambda: hs_verifier().verify(f"{header}.{body}."))
    assert (denied.status, denied.code) == (401, "unauthorized")
    assert denied.message == "the token's algorithm none is not allowed (only HS256)"


def test_an_hs512_token_is_refused_with_the_algorithm_it_names() -> None:
    token = jwt.encode(claims(), SECRET + SECRET, algorithm="HS512")
    denied = refusal(lambda: hs_verifier().verify(token))
    assert denied.message == "the token's algorithm HS512 is not allowed (only HS256)"


def test_a_token_signed_with_another_secret_does_not_verify() -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims(), secret=OTHER_SECRET)))
    assert (denied.status, denied.code, denied.message) == (
        401,
        "unauthorized",
        "the token's signature does not verify",
    )


@pytest.mark.parametrize("claim", ["exp", "sub"])
def test_a_token_without_a_required_claim_is_refused_naming_it(claim: str) -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims(**{claim: None}))))
    assert (denied.status, denied.message) == (401, f"the token has no {claim} claim")


def test_an_empty_sub_is_refused() -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims(sub=""))))
    assert (denied.status, denied.message) == (401, "the token's sub claim must be a string of 1 to 256 characters")


def test_an_expired_token_is_refused() -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims(exp=int(time.time()) - 5))))
    assert (denied.status, denied.code, denied.message) == (401, "unauthorized", "the token has expired")


def test_a_token_not_valid_yet_is_refused() -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims(nbf=int(time.time()) + 60))))
    assert (denied.status, denied.message) == (401, "the token is not valid yet (nbf or iat in the future)")


def test_leeway_accepts_a_token_expired_within_it_and_not_beyond() -> None:
    token = hs256(claims(exp=int(time.time()) - 5))
    assert hs_verifier(leeway=30).verify(token).role == "staff"
    assert refusal(lambda: hs_verifier(leeway=1).verify(token)).message == "the token has expired"


def test_leeway_accepts_an_nbf_slightly_in_the_future() -> None:
    token = hs256(claims(nbf=int(time.time()) + 5))
    assert hs_verifier(leeway=30).verify(token).role == "staff"


def test_the_configured_issuer_is_required() -> None:
    verifier = hs_verifier(issuer="https://issuer.example")
    assert verifier.verify(hs256(claims(iss="https://issuer.example"))).role == "staff"
    wrong = refusal(lambda: verifier.verify(hs256(claims(iss="https://elsewhere.example"))))
    assert (wrong.status, wrong.message) == (401, "the token's issuer is not https://issuer.example")
    assert refusal(lambda: verifier.verify(hs256(claims()))).message == "the token has no iss claim"


def test_the_configured_audience_is_required() -> None:
    verifier = hs_verifier(audience="orders-live")
    assert verifier.verify(hs256(claims(aud="orders-live"))).role == "staff"
    assert verifier.verify(hs256(claims(aud=["other", "orders-live"]))).role == "staff"
    wrong = refusal(lambda: verifier.verify(hs256(claims(aud="another-service"))))
    assert (wrong.status, wrong.message) == (401, "the token's audience is not orders-live")
    assert refusal(lambda: verifier.verify(hs256(claims()))).message == "the token has no aud claim"


def test_an_audience_claim_is_accepted_when_no_audience_is_configured() -> None:
    assert hs_verifier().verify(hs256(claims(aud="some-service"))).role == "staff"


def test_an_unknown_role_is_forbidden() -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims("admin"))))
    assert (denied.status, denied.code) == (403, "forbidden")
    assert denied.message == "the token's role 'admin' is not one of viewer, customer, staff, agent"


def test_a_token_without_a_role_claim_is_forbidden() -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims(role=None))))
    assert (denied.status, denied.code, denied.message) == (403, "forbidden", "the token has no role claim")


def test_a_customer_token_without_a_customer_claim_is_forbidden() -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims("customer"))))
    assert (denied.status, denied.code, denied.message) == (403, "forbidden", "a customer token needs a customer claim")


@pytest.mark.parametrize(
    "customer",
    [" Ada", "Ada ", "", "A" * (MAX_CUSTOMER + 1), 42, "Ada\x00"],
    ids=["leading-space", "trailing-space", "empty", "too-long", "a-number", "nul"],
)
def test_a_customer_claim_that_is_no_customer_name_is_forbidden(customer: object) -> None:
    denied = refusal(lambda: hs_verifier().verify(hs256(claims("customer", customer=customer))))
    assert (denied.status, denied.code) == (403, "forbidden")
    assert denied.message.startswith("the token's customer claim must be a customer name")


def test_a_customer_name_of_the_longest_length_is_accepted() -> None:
    name = "A" * MAX_CUSTOMER
    assert hs_verifier().verify(hs256(claims("customer", customer=name))).customer == name


def test_custom_claim_names_are_read_and_the_default_ones_ignored() -> None:
    verifier = hs_verifier(role_claim="https://example.com/role", customer_claim="tenant")
    token = hs256(claims(role=None, **{"https://example.com/role": "customer", "tenant": "Ada"}))
    identity = verifier.verify(token)
    assert (identity.role, identity.customer) == ("customer", "Ada")
    default_names = hs256(claims("customer", customer="Ada"))
    assert refusal(lambda: verifier.verify(default_names)).message == "the token has no https://example.com/role claim"
    no_tenant = hs256(claims(role=None, customer="Ada", **{"https://example.com/role": "customer"}))
    assert refusal(lambda: verifier.verify(no_tenant)).message == "a customer token needs a tenant claim"


def test_a_verifier_takes_a_secret_or_keys_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        JwtVerifier(JwtRules())
    with pytest.raises(ValueError, match="not both"):
        JwtVerifier(JwtRules(), secret=SECRET, keys=lambda: KeySet({}))


# --- JWTs from a JWKS file ------------------------------------------------------------------


class Keys:
    """A private key, its JWK (public half, with a kid) and its algorithm."""

    def __init__(self, private: Any, kid: str) -> None:
        self.private, self.kid = private, kid
        public = private.public_key()
        self.algorithm = algorithm_for(private)
        to_jwk = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[self.algorithm].to_jwk
        self.jwk: dict[str, Any] = {**to_jwk(public, as_dict=True), "kid": kid, "use": "sig"}
        self.public_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, payload: dict[str, Any], kid: str | None = "") -> str:
        headers = {"kid": self.kid if kid == "" else kid} if kid is not None else None
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers=headers)


@pytest.fixture(scope="module")
def rsa_keys() -> Keys:
    return Keys(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-1")


@pytest.fixture(scope="module")
def ec_keys() -> Keys:
    return Keys(ec.generate_private_key(ec.SECP256R1()), "ec-1")


@pytest.fixture(scope="module")
def ed_keys() -> Keys:
    return Keys(ed25519.Ed25519PrivateKey.generate(), "ed-1")


@pytest.fixture(scope="module")
def all_keys(rsa_keys: Keys, ec_keys: Keys, ed_keys: Keys) -> list[Keys]:
    return [rsa_keys, ec_keys, ed_keys]


def jwks(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


def replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a key server would: a new file renamed over the old one."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def jwks_verifier(*keys: Keys, **rules: Any) -> JwtVerifier:
    key_set = parse_key_set(jwks(*(k.jwk for k in keys)))
    return JwtVerifier(JwtRules(**rules), keys=lambda: key_set)


def test_rsa_ec_and_ed25519_tokens_verify_with_the_key_their_kid_names(all_keys: list[Keys]) -> None:
    verifier = jwks_verifier(*all_keys)
    for keys in all_keys:
        identity = verifier.verify(keys.sign(claims("viewer", sub=f"viewer:{keys.kid}")))
        assert (identity.sub, identity.role, identity.origin) == (f"viewer:{keys.kid}", "viewer", "jwt")


def test_a_token_signed_by_one_key_under_the_kid_of_another_does_not_verify(
    rsa_keys: Keys, ec_keys: Keys, ed_keys: Keys
) -> None:
    other_ec = Keys(ec.generate_private_key(ec.SECP256R1()), "ec-1")  # same kid, another key
    denied = refusal(lambda: jwks_verifier(rsa_keys, ec_keys, ed_keys).verify(other_ec.sign(claims())))
    assert (denied.status, denied.message) == (401, "the token's signature does not verify")


def test_an_unknown_kid_is_refused(all_keys: list[Keys], ec_keys: Keys) -> None:
    denied = refusal(lambda: jwks_verifier(*all_keys).verify(ec_keys.sign(claims(), kid="gone")))
    assert (denied.status, denied.code, denied.message) == (
        401,
        "unauthorized",
        "the token's key id 'gone' is not known",
    )


def test_a_token_without_kid_is_refused_when_the_set_has_several_keys(all_keys: list[Keys], ed_keys: Keys) -> None:
    denied = refusal(lambda: jwks_verifier(*all_keys).verify(ed_keys.sign(claims(), kid=None)))
    assert (denied.status, denied.message) == (401, "the token names no key id (kid)")


def test_a_token_without_kid_verifies_with_the_only_key_of_a_set(ed_keys: Keys) -> None:
    unnamed = {k: v for k, v in ed_keys.jwk.items() if k != "kid"}
    key_set = parse_key_set(jwks(unnamed))
    verifier = JwtVerifier(JwtRules(), keys=lambda: key_set)
    assert verifier.verify(ed_keys.sign(claims("agent"), kid=None)).role == "agent"


def test_an_hs256_token_keyed_with_the_public_key_is_refused(rsa_keys: Keys) -> None:
    """The classic algorithm confusion: the public key's PEM used as an HMAC secret."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": rsa_keys.kid}).encode())
    body = b64url(json.dumps(claims("staff")).encode())
    signature = b64url(hmac.new(rsa_keys.public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    denied = refusal(lambda: jwks_verifier(rsa_keys).verify(f"{header}.{body}.{signature}"))
    assert (denied.status, denied.code) == (401, "unauthorized")
    assert denied.message == "the token's algorithm HS256 is not allowed (only RS256)"


def test_alg_none_is_refused_with_a_known_kid(ed_keys: Keys) -> None:
    header = b64url(json.dumps({"alg": "none", "kid": ed_keys.kid}).encode())
    body = b64url(json.dumps(claims("staff")).encode())
    denied = refusal(lambda: jwks_verifier(ed_keys).verify(f"{header}.{body}."))
    assert denied.message == "the token's algorithm none is not allowed (only EdDSA)"


def test_an_oct_key_in_the_jwks_is_ignored(ed_keys: Keys) -> None:
    oct_key = {"kty": "oct", "kid": "shared", "k": b64url(SECRET.encode()), "alg": "HS256"}
    key_set = parse_key_set(jwks(oct_key, ed_keys.jwk))
    assert set(key_set.keys) == {ed_keys.kid}
    verifier = JwtVerifier(JwtRules(), keys=lambda: key_set)
    denied = refusal(lambda: verifier.verify(hs256(claims(), headers={"kid": "shared"})))
    assert denied.message == "the token's key id 'shared' is not known"


def test_a_jwks_of_only_secrets_holds_no_usable_key() -> None:
    with pytest.raises(ValueError, match="no usable RS256, ES256 or EdDSA signing key"):
        parse_key_set(jwks({"kty": "oct", "kid": "shared", "k": b64url(SECRET.encode())}))


def test_an_encryption_key_in_the_jwks_is_ignored(rsa_keys: Keys, ed_keys: Keys) -> None:
    key_set = parse_key_set(jwks({**rsa_keys.jwk, "use": "enc"}, ed_keys.jwk))
    assert set(key_set.keys) == {ed_keys.kid}


def test_keys_rotate_when_the_jwks_file_is_replaced(tmp_path: Path, rsa_keys: Keys, ec_keys: Keys) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks(rsa_keys.jwk))
    authenticator = Authenticator(IdentityOptions(jwt_public_keys=path))
    assert authenticator.mode == "jwt"
    assert authenticator.identify(rsa_keys.sign(claims()), "read", "test").role == "staff"
    refused_before = refusal(lambda: authenticator.identify(ec_keys.sign(claims()), "read", "test"))
    assert refused_before.message == "the token's key id 'ec-1' is not known"

    replace(path, jwks(ec_keys.jwk))
    authenticator.check_files()
    assert authenticator.identify(ec_keys.sign(claims()), "read", "test").role == "staff"
    removed = refusal(lambda: authenticator.identify(rsa_keys.sign(claims()), "read", "test"))
    assert (removed.status, removed.message) == (401, "the token's key id 'rsa-1' is not known")


def test_a_key_replaced_under_the_same_kid_takes_effect(tmp_path: Path, ec_keys: Keys) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks(ec_keys.jwk))
    authenticator = Authenticator(IdentityOptions(jwt_public_keys=path))
    successor = Keys(ec.generate_private_key(ec.SECP256R1()), ec_keys.kid)
    replace(path, jwks(successor.jwk))
    authenticator.check_files()
    assert authenticator.identify(successor.sign(claims()), "read", "test").role == "staff"
    old = refusal(lambda: authenticator.identify(ec_keys.sign(claims()), "read", "test"))
    assert old.message == "the token's signature does not verify"


def test_a_key_of_another_algorithm_in_the_jwks_is_ignored(ed_keys: Keys) -> None:
    p384 = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), as_dict=True)
    key_set = parse_key_set(jwks({**p384, "kid": "p384"}, ed_keys.jwk))
    assert set(key_set.keys) == {ed_keys.kid}


def test_a_broken_jwks_file_keeps_the_keys_read_before(tmp_path: Path, ed_keys: Keys) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks(ed_keys.jwk))
    authenticator = Authenticator(IdentityOptions(jwt_public_keys=path))
    replace(path, b'{"keys": [')
    authenticator.check_files()
    assert authenticator.key_file is not None and authenticator.key_file.problem is not None
    assert authenticator.key_file.problem.startswith("not JSON")
    assert authenticator.problems == []
    assert authenticator.identify(ed_keys.sign(claims()), "read", "test").role == "staff"


def test_a_missing_jwks_file_at_start_is_a_problem_until_it_appears(tmp_path: Path, ed_keys: Keys) -> None:
    path = tmp_path / "jwks.json"
    authenticator = Authenticator(IdentityOptions(jwt_public_keys=path))
    assert len(authenticator.problems) == 1
    assert authenticator.problems[0].startswith("JWT public keys: cannot read it")
    denied = refusal(lambda: authenticator.identify(ed_keys.sign(claims()), "read", "test"))
    assert denied.status == 401

    path.write_bytes(jwks(ed_keys.jwk))
    authenticator.check_files()
    assert authenticator.problems == []
    assert authenticator.identify(ed_keys.sign(claims()), "read", "test").role == "staff"


# --- the authenticator's modes --------------------------------------------------------------


def test_the_mode_follows_the_options() -> None:
    assert Authenticator(IdentityOptions()).mode == "open"
    assert Authenticator(IdentityOptions(read_token="r")).mode == "shared"
    assert Authenticator(IdentityOptions(read_token="r", jwt_secret=SECRET)).mode == "jwt"


def test_in_jwt_mode_the_shared_tokens_are_ignored() -> None:
    authenticator = Authenticator(IdentityOptions(read_token="read-1", write_token="write-1", jwt_secret=SECRET))
    denied = refusal(lambda: authenticator.identify("write-1", "write", "test"))
    assert (denied.status, denied.message) == (401, "the token is not a JWT")


def test_in_jwt_mode_no_token_is_refused() -> None:
    authenticator = Authenticator(IdentityOptions(jwt_secret=SECRET))
    denied = refusal(lambda: authenticator.identify(None, "read", "test"))
    assert (denied.status, denied.code, denied.message) == (401, "unauthorized", "a token is required")


# --- revocation -----------------------------------------------------------------------------


def test_parse_revoked_skips_comments_and_blank_lines() -> None:
    raw = b"# revoked after the incident\n\n  staff:ada  \njti-7\n   # indented comment\n\t\n"
    assert parse_revoked(raw) == frozenset({"staff:ada", "jti-7"})


def test_parse_revoked_refuses_what_is_not_utf8() -> None:
    with pytest.raises(ValueError, match="not UTF-8"):
        parse_revoked(b"\xff\xfe")


def test_is_revoked_matches_the_sub_or_the_jti_of_jwt_identities_only() -> None:
    revoked = frozenset({"staff:ada", "jti-7"})
    assert is_revoked(Identity(sub="staff:ada", role="staff", origin="jwt"), revoked)
    assert is_revoked(Identity(sub="staff:bob", role="staff", origin="jwt", jti="jti-7"), revoked)
    assert not is_revoked(Identity(sub="staff:bob", role="staff", origin="jwt", jti="jti-8"), revoked)
    assert not is_revoked(Identity(sub="staff:ada", role="staff", origin="shared"), revoked)
    assert not is_revoked(Identity(sub="staff:ada", role="staff", origin="open"), revoked)
    assert not is_revoked(Identity(sub="staff:ada", role="staff", origin="jwt"), frozenset())


def test_a_revoked_token_is_refused_at_identify(tmp_path: Path) -> None:
    path = tmp_path / "revoked"
    path.write_text("# revoked\nstaff:ada\njti-9\n")
    authenticator = Authenticator(IdentityOptions(jwt_secret=SECRET, revoked=path))
    for token in (hs256(claims(sub="staff:ada", jti="jti-1")), hs256(claims(sub="staff:bob", jti="jti-9"))):
        denied = refusal(lambda token=token: authenticator.identify(token, "read", "test"))
        assert (denied.status, denied.code, denied.message) == (401, "unauthorized", "the token was revoked")
    assert authenticator.identify(hs256(claims(sub="staff:bob", jti="jti-1")), "read", "test").sub == "staff:bob"


def test_revocation_listeners_are_told_when_the_list_changes_and_only_then(tmp_path: Path) -> None:
    path = tmp_path / "revoked"
    path.write_text("staff:old\n")
    authenticator = Authenticator(IdentityOptions(jwt_secret=SECRET, revoked=path))
    calls: list[Callable[[Identity], bool]] = []
    authenticator.on_revoked(calls.append)
    ada = authenticator.identify(hs256(claims(sub="staff:ada")), "read", "test")

    authenticator.check_files()
    assert calls == []  # the file did not change

    replace(path, b"staff:old\nstaff:ada\n")
    authenticator.check_files()
    assert len(calls) == 1
    assert calls[0](ada)
    assert not calls[0](Identity(sub="staff:bob", role="staff", origin="jwt"))

    authenticator.check_files()
    assert len(calls) == 1
    denied = refusal(lambda: authenticator.identify(hs256(claims(sub="staff:ada")), "read", "test"))
    assert denied.message == "the token was revoked"


# --- stream tickets -------------------------------------------------------------------------

CUSTOMER = Identity(sub="customer:Ada", role="customer", origin="jwt", customer="Ada", exp=NOW + 600, jti="j-1")
AGENT = Identity(sub="agent:1", role="agent", origin="jwt", exp=NOW + 600, jti="j-2", appends_actions=True)


def tickets(clock: Clock, key: bytes = b"k" * 32) -> StreamTickets:
    return StreamTickets(key, clock=clock)


@pytest.mark.parametrize("identity", [CUSTOMER, AGENT, OPEN, WRITER], ids=["customer", "agent", "open", "writer"])
def test_a_ticket_redeems_to_the_identity_it_was_minted_for(identity: Identity) -> None:
    clock = Clock()
    issued = tickets(clock)
    assert issued.redeem(issued.mint(identity)) == identity


def test_a_ticket_is_good_for_one_redeem() -> None:
    clock = Clock()
    issued = tickets(clock)
    ticket = issued.mint(CUSTOMER)
    issued.redeem(ticket)
    denied = refusal(lambda: issued.redeem(ticket))
    assert (denied.status, denied.code) == (401, "unauthorized")
    assert denied.message.startswith("the stream ticket was already used")


def test_a_ticket_past_its_ttl_is_refused() -> None:
    clock = Clock()
    issued = tickets(clock)
    ticket = issued.mint(CUSTOMER)
    clock.now += TTL + 0.5
    denied = refusal(lambda: issued.redeem(ticket))
    assert (denied.status, denied.message.split(";")[0]) == (401, "the stream ticket has expired")


def test_a_ticket_within_its_ttl_is_accepted() -> None:
    clock = Clock()
    issued = tickets(clock)
    ticket = issued.mint(CUSTOMER)
    clock.now += TTL - 0.5
    assert issued.redeem(ticket) == CUSTOMER


def test_a_ticket_with_a_changed_body_is_refused() -> None:
    clock = Clock()
    issued = tickets(clock)
    body, _, signature = issued.mint(CUSTOMER).partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(role="staff", customer=None)
    forged = f"{b64url(json.dumps(payload, separators=(',', ':')).encode())}.{signature}"
    denied = refusal(lambda: issued.redeem(forged))
    assert (denied.status, denied.message) == (401, "the stream ticket is not valid")


def test_a_ticket_with_a_changed_signature_is_refused() -> None:
    clock = Clock()
    issued = tickets(clock)
    ticket = issued.mint(CUSTOMER)
    flipped = ticket[:-1] + ("A" if ticket[-1] != "A" else "B")
    for forged in (flipped, ticket.partition(".")[0], ticket.partition(".")[0] + "."):
        assert refusal(lambda forged=forged: issued.redeem(forged)).message == "the stream ticket is not valid"


def test_a_ticket_of_another_key_is_refused() -> None:
    clock = Clock()
    ticket = tickets(clock, b"a" * 32).mint(CUSTOMER)
    assert refusal(lambda: tickets(clock, b"b" * 32).redeem(ticket)).message == "the stream ticket is not valid"


def test_used_tickets_are_forgotten_once_expired() -> None:
    clock = Clock()
    issued = tickets(clock)
    first = issued.mint(CUSTOMER)
    issued.redeem(first)
    assert len(issued._used) == 1
    for _ in range(200):
        clock.now += TTL + 1
        issued.redeem(issued.mint(CUSTOMER))
        assert len(issued._used) == 1
        assert len(issued._expiries) == 1
    # Forgetting is safe: the forgotten ticket is refused as expired.
    assert refusal(lambda: issued.redeem(first)).message.startswith("the stream ticket has expired")


def test_instances_on_the_same_jwt_secret_accept_each_others_tickets() -> None:
    clock = Clock()
    one = Authenticator(IdentityOptions(jwt_secret=SECRET), clock=clock)
    two = Authenticator(IdentityOptions(jwt_secret=SECRET), clock=clock)
    other = Authenticator(IdentityOptions(jwt_secret=OTHER_SECRET), clock=clock)
    assert two.redeem_ticket(one.mint_ticket(CUSTOMER), "test") == CUSTOMER
    denied = refusal(lambda: other.redeem_ticket(one.mint_ticket(CUSTOMER), "test"))
    assert denied.message == "the stream ticket is not valid"


def test_a_ticket_whose_token_expired_meanwhile_is_refused() -> None:
    clock = Clock()
    authenticator = Authenticator(IdentityOptions(jwt_secret=SECRET), clock=clock)
    short = Identity(sub="staff:ada", role="staff", origin="jwt", exp=NOW + 10)
    ticket = authenticator.mint_ticket(short)
    clock.now += 15  # the ticket is still good (30 s), the token is not
    denied = refusal(lambda: authenticator.redeem_ticket(ticket, "test"))
    assert (denied.status, denied.message) == (401, "the token has expired")


def test_a_ticket_whose_identity_was_revoked_meanwhile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "revoked"
    path.write_text("")
    clock = Clock()
    authenticator = Authenticator(IdentityOptions(jwt_secret=SECRET, revoked=path), clock=clock)
    ticket = authenticator.mint_ticket(CUSTOMER)
    replace(path, f"{CUSTOMER.sub}\n".encode())
    authenticator.check_files()
    denied = refusal(lambda: authenticator.redeem_ticket(ticket, "test"))
    assert (denied.status, denied.message) == (401, "the token was revoked")


def test_an_open_service_redeems_its_tickets_without_a_token() -> None:
    authenticator = Authenticator(IdentityOptions())
    assert authenticator.redeem_ticket(authenticator.mint_ticket(OPEN), "test") == OPEN


# --- refreshed tokens -----------------------------------------------------------------------


def test_a_refresh_with_the_same_holder_gives_the_later_exp() -> None:
    authenticator = Authenticator(IdentityOptions(jwt_secret=SECRET))
    now = int(time.time())
    current = authenticator.identify(hs256(claims("customer", customer="Ada", exp=now + 60)), "read", "test")
    fresh = authenticator.refreshed(current, hs256(claims("customer", customer="Ada", exp=now + 900)), "test")
    assert fresh.exp == now + 900
    assert (fresh.sub, fresh.role, fresh.customer) == (current.sub, current.role, current.customer)


@pytest.mark.parametrize(
    "change",
    [{"sub": "customer:Bob"}, {"role": "staff"}, {"customer": "Bob"}],
    ids=["another-sub", "another-role", "another-customer"],
)
def test_a_refresh_for_another_holder_is_forbidden(change: dict[str, str]) -> None:
    authenticator = Authenticator(IdentityOptions(jwt_secret=SECRET))
    current = authenticator.identify(hs256(claims("customer", customer="Ada")), "read", "test")
    other = hs256({**claims("customer", customer="Ada", exp=int(time.time()) + 900), **change})
    denied = refusal(lambda: authenticator.refreshed(current, other, "test"))
    assert (denied.status, denied.code) == (403, "forbidden")
    assert denied.message == "a refreshed token must carry the same sub, role and customer"


def test_a_refresh_with_an_invalid_token_is_unauthorized() -> None:
    authenticator = Authenticator(IdentityOptions(jwt_secret=SECRET))
    current = authenticator.identify(hs256(claims()), "read", "test")
    for bad in ("junk", hs256(claims(), secret=OTHER_SECRET), hs256(claims(exp=int(time.time()) - 1))):
        denied = refusal(lambda bad=bad: authenticator.refreshed(current, bad, "test"))
        assert (denied.status, denied.code) == (401, "unauthorized")


# --- shared tokens: the semantics from before identities --------------------------------------


def test_with_no_token_set_everything_is_open() -> None:
    shared = SharedTokens(None, "")
    assert shared.open
    for need in ("read", "write"):
        assert shared.identify(None, need, "test") is OPEN
        assert shared.identify("anything", need, "test") is OPEN


def test_a_read_token_alone_guards_reads_and_writes() -> None:
    shared = SharedTokens("read-1", None)
    assert shared.identify("read-1", "read", "test") == WRITER
    assert shared.identify("read-1", "write", "test") == WRITER
    for need in ("read", "write"):
        missing = refusal(lambda need=need: shared.identify(None, need, "test"))
        assert (missing.status, missing.code, missing.message) == (401, "unauthorized", f"a {need} token is required")
        wrong = refusal(lambda need=need: shared.identify("wrong", need, "test"))
        assert (wrong.status, wrong.code, wrong.message) == (403, "forbidden", f"this token does not allow {need}s")


def test_with_both_tokens_the_read_token_reads_and_may_not_write() -> None:
    shared = SharedTokens("read-1", "write-1")
    assert shared.identify("read-1", "read", "test") == READER
    denied = refusal(lambda: shared.identify("read-1", "write", "test"))
    assert (denied.status, denied.code, denied.message) == (403, "forbidden", "this token does not allow writes")


def test_with_both_tokens_the_write_token_reads_and_writes() -> None:
    shared = SharedTokens("read-1", "write-1")
    assert shared.identify("write-1", "read", "test") == WRITER
    assert shared.identify("write-1", "write", "test") == WRITER


def test_with_both_tokens_a_missing_token_is_401_and_a_wrong_one_403() -> None:
    shared = SharedTokens("read-1", "write-1")
    for need in ("read", "write"):
        missing = refusal(lambda need=need: shared.identify(None, need, "test"))
        assert (missing.status, missing.message) == (401, f"a {need} token is required")
        wrong = refusal(lambda need=need: shared.identify("wrong", need, "test"))
        assert (wrong.status, wrong.message) == (403, f"this token does not allow {need}s")


def test_a_write_token_alone_leaves_reads_open_and_guards_writes() -> None:
    shared = SharedTokens(None, "write-1")
    assert shared.identify(None, "read", "test") == ANONYMOUS_READER
    assert shared.identify("wrong", "read", "test") == ANONYMOUS_READER
    assert shared.identify("write-1", "read", "test") == WRITER
    assert shared.identify("write-1", "write", "test") == WRITER
    missing = refusal(lambda: shared.identify(None, "write", "test"))
    assert (missing.status, missing.message) == (401, "a write token is required")
    wrong = refusal(lambda: shared.identify("wrong", "write", "test"))
    assert (wrong.status, wrong.message) == (403, "this token does not allow writes")


def test_shared_identities_read_as_viewer_and_write_as_staff_that_appends() -> None:
    assert (READER.role, READER.appends_actions, READER.origin) == ("viewer", False, "shared")
    assert (WRITER.role, WRITER.appends_actions, WRITER.origin) == ("staff", True, "shared")


# --- the roles' rights on orders --------------------------------------------------------------

ADA = Identity(sub="customer:Ada", role="customer", origin="jwt", customer="Ada")
VIEWER = Identity(sub="viewer:1", role="viewer", origin="jwt")
STAFF = Identity(sub="staff:1", role="staff", origin="jwt")
AGENT_ID = Identity(sub="agent:1", role="agent", origin="jwt", appends_actions=True)


def forbidden(action: Callable[[], None]) -> Forbidden:
    with pytest.raises(Forbidden) as caught:
        action()
    return caught.value


def test_staff_may_create_update_and_delete_anything() -> None:
    STAFF.may_create(OrderCreate(customer_name="Bob", product_name="Lamp", status="shipped"))
    STAFF.may_update(OrderPatch(customer_name="Bob", status="delivered"))
    STAFF.may_delete()
    assert STAFF.scope is None


@pytest.mark.parametrize(("identity", "article"), [(VIEWER, "a viewer"), (AGENT_ID, "an agent")])
def test_viewers_and_agents_may_not_write_orders(identity: Identity, article: str) -> None:
    message = f"{article} may not write orders"
    assert forbidden(lambda: identity.may_create(OrderCreate(customer_name="A", product_name="B"))).message == message
    assert forbidden(lambda: identity.may_update(OrderPatch(product_name="B"))).message == message
    assert forbidden(identity.may_delete).message == message


def test_a_customer_creates_its_own_pending_orders() -> None:
    ADA.may_create(OrderCreate(customer_name="Ada", product_name="Lamp"))
    ADA.may_create(OrderCreate(customer_name="Ada", product_name="Lamp", status="pending"))


def test_a_customer_may_not_create_for_another_customer_nor_with_a_status() -> None:
    other = forbidden(lambda: ADA.may_create(OrderCreate(customer_name="Bob", product_name="Lamp")))
    assert other.message == "a customer creates only its own pending orders"
    assert set(other.fields) == {"customer_name"}
    shipped = forbidden(lambda: ADA.may_create(OrderCreate(customer_name="Ada", product_name="Lamp", status="shipped")))
    assert set(shipped.fields) == {"status"}
    both = forbidden(lambda: ADA.may_create(OrderCreate(customer_name="Bob", product_name="L", status="delivered")))
    assert set(both.fields) == {"customer_name", "status"}


def test_a_customer_may_change_the_product_and_keep_its_own_name() -> None:
    ADA.may_update(OrderPatch(product_name="Desk"))
    ADA.may_update(OrderPatch(product_name="Desk", customer_name="Ada"))


def test_a_customer_may_not_change_the_status() -> None:
    denied = forbidden(lambda: ADA.may_update(OrderPatch(status="shipped")))
    assert denied.fields == {"status": "a customer may not change an order's status"}


def test_a_customer_may_not_give_an_order_to_another_customer() -> None:
    denied = forbidden(lambda: ADA.may_update(OrderPatch(customer_name="Bob", product_name="Desk")))
    assert denied.fields == {"customer_name": "a customer may not give an order to another customer"}


def test_a_customer_may_not_delete() -> None:
    assert forbidden(ADA.may_delete).message == "a customer may not delete orders"


def test_only_the_agent_and_the_shared_write_token_append_actions() -> None:
    AGENT_ID.may_append_actions()
    WRITER.may_append_actions()
    OPEN.may_append_actions()
    for identity in (STAFF, VIEWER, ADA, READER):
        denied = forbidden(identity.may_append_actions)
        assert denied.message == f"only the agent appends agent action records, not a {identity.role}"


def test_the_scope_is_the_customer_only_for_a_customer_role() -> None:
    assert ADA.scope == "Ada"
    assert Identity(sub="s", role="staff", origin="jwt", customer="Ada").scope is None


# --- per-identity limits ----------------------------------------------------------------------


def jwt_identity(sub: str) -> Identity:
    return Identity(sub=sub, role="customer", origin="jwt", customer=sub)


def test_an_identity_holds_at_most_max_connections_and_giving_back_frees_one() -> None:
    limits = IdentityLimits(max_connections=20, subscribe_rate=5, write_rate=20)
    ada, bob = jwt_identity("ada"), jwt_identity("bob")
    assert all(limits.take_connection(ada) for _ in range(20))
    assert not limits.take_connection(ada)
    assert limits.take_connection(bob)
    limits.give_back(ada)
    assert limits.take_connection(ada)
    assert not limits.take_connection(ada)


def test_connections_given_back_leave_no_count_behind() -> None:
    limits = IdentityLimits(max_connections=3, subscribe_rate=5, write_rate=20)
    ada = jwt_identity("ada")
    for _ in range(3):
        limits.take_connection(ada)
    for _ in range(5):  # one more than taken: never below zero
        limits.give_back(ada)
    assert limits.open == {}
    assert all(limits.take_connection(ada) for _ in range(3))


@pytest.mark.parametrize("identity", [OPEN, WRITER, READER, ANONYMOUS_READER], ids=["open", "write", "read", "anon"])
def test_shared_and_open_identities_are_not_counted(identity: Identity) -> None:
    limits = IdentityLimits(max_connections=2, subscribe_rate=5, write_rate=1)
    assert all(limits.take_connection(identity) for _ in range(50))
    assert limits.open == {}
    assert limits.subscribe_allowed(identity) is None
    assert all(limits.write_allowed(identity) for _ in range(50))


def test_subscribes_are_rate_limited_per_sub() -> None:
    clock = Clock()
    limits = IdentityLimits(max_connections=20, subscribe_rate=5, write_rate=20)
    limits.subscribes.clock = clock
    ada, bob = jwt_identity("ada"), jwt_identity("bob")
    assert [limits.subscribe_allowed(ada) for _ in range(11)] == [True] * 10 + [False]  # burst 10
    assert limits.subscribe_allowed(bob) is True
    clock.now += 0.2  # one more at 5 a second
    assert limits.subscribe_allowed(ada) is True
    assert limits.subscribe_allowed(ada) is False


def test_writes_are_rate_limited_per_sub() -> None:
    clock = Clock()
    limits = IdentityLimits(max_connections=20, subscribe_rate=5, write_rate=20)
    limits.writes.clock = clock
    ada, bob = jwt_identity("ada"), jwt_identity("bob")
    assert [limits.write_allowed(ada) for _ in range(41)] == [True] * 40 + [False]  # burst twice the rate
    assert limits.write_allowed(bob)
    clock.now += 1.0
    assert [limits.write_allowed(ada) for _ in range(21)] == [True] * 20 + [False]


def test_a_rate_limit_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    bucket = RateLimit(rate=2, burst=4, clock=clock)
    assert [bucket.allow() for _ in range(5)] == [True] * 4 + [False]
    assert not bucket.idle
    clock.now += 100
    assert bucket.idle
    assert [bucket.allow() for _ in range(5)] == [True] * 4 + [False]


def test_idle_buckets_are_dropped_when_there_are_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits_module, "MAX_BUCKETS", 3)
    clock = Clock()
    buckets = RateLimits(rate=1, burst=2, clock=clock)
    buckets.allow("a")
    buckets.allow("b")
    clock.now += 10  # a and b are full again
    buckets.allow("c")
    buckets.allow("c")  # c is empty: it must be kept, with its count
    buckets.allow("d")
    assert set(buckets._buckets) == {"c", "d"}
    assert not buckets.allow("c")


# --- the client's tokens ----------------------------------------------------------------------


def test_expiry_reads_a_jwts_exp_without_verifying_it() -> None:
    assert Tokens.expiry(hs256(claims(exp=1_900_000_000), secret=OTHER_SECRET)) == 1_900_000_000.0


@pytest.mark.parametrize("token", [None, "", "read-secret-1", "a.b.c", "x.y"])
def test_a_token_that_is_not_a_jwt_never_expires(token: str | None) -> None:
    assert Tokens.expiry(token) is None
    assert Tokens.refresh_at(token, now=NOW) is None


def test_a_jwt_without_exp_never_expires() -> None:
    assert Tokens.expiry(hs256(claims(exp=None))) is None


def test_a_long_token_is_refreshed_a_minute_before_it_expires() -> None:
    token = hs256(claims(exp=int(NOW) + 900))
    assert Tokens.refresh_at(token, now=NOW) == NOW + 900 - REFRESH_LEAD


def test_a_short_token_is_refreshed_at_80_percent_of_its_remaining_life() -> None:
    token = hs256(claims(exp=int(NOW) + 100))
    assert REFRESH_SHARE == 0.8
    assert Tokens.refresh_at(token, now=NOW) == pytest.approx(NOW + 80)


def test_an_expired_token_is_refreshed_now() -> None:
    token = hs256(claims(exp=int(NOW) - 10))
    assert Tokens.refresh_at(token, now=NOW) == NOW


def test_a_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    source = TokenFile(path)
    assert source() == "first-token"
    replace(path, b"  the-second-token  \n")
    assert source() == "the-second-token"


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(" \n")
    with pytest.raises(ValueError, match="is empty"):
        TokenFile(path)()


async def test_tokens_get_a_fixed_string_or_none() -> None:
    assert await Tokens("abc").get() == "abc"
    assert await Tokens(None).get() is None
    assert Tokens("abc").fixed and Tokens(None).fixed


async def test_tokens_ask_a_sync_provider_each_time() -> None:
    handed = iter(["one", "two"])
    tokens = Tokens(lambda: next(handed))
    assert not tokens.fixed
    assert [await tokens.get(), await tokens.get()] == ["one", "two"]


async def test_tokens_await_an_async_provider() -> None:
    count = 0

    async def provider() -> str:
        nonlocal count
        count += 1
        return f"token-{count}"

    tokens = Tokens(provider)
    assert not tokens.fixed
    assert [await tokens.get(), await tokens.get()] == ["token-1", "token-2"]


async def test_a_token_file_source_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    tokens = Tokens(token_source("ignored", path))
    assert not tokens.fixed
    assert await tokens.get() == "first"
    replace(path, b"second-one\n")
    assert await tokens.get() == "second-one"
    assert token_source("given", None) == "given"


# --- minting ------------------------------------------------------------------------------------


def test_a_minted_hs256_token_verifies_with_the_rules_it_was_minted_for() -> None:
    token = mint_token(
        "customer",
        customer="Ada",
        ttl=120,
        secret=SECRET,
        rules=JwtRules(
            issuer="https://issuer.example",
            audience="orders-live",
            role_claim="https://example.com/role",
            customer_claim="tenant",
        ),
    )
    verifier = hs_verifier(
        issuer="https://issuer.example",
        audience="orders-live",
        role_claim="https://example.com/role",
        customer_claim="tenant",
    )
    identity = verifier.verify(token)
    assert (identity.sub, identity.role, identity.customer) == ("customer:Ada", "customer", "Ada")
    assert identity.exp == pytest.approx(time.time() + 120, abs=5)
    assert identity.jti is not None


def test_minted_tokens_get_distinct_jtis_and_a_role_prefixed_sub() -> None:
    first, second = (hs_verifier().verify(mint_token("viewer", secret=SECRET)) for _ in range(2))
    assert first.jti != second.jti
    assert first.sub.startswith("viewer:") and second.sub.startswith("viewer:")


def test_minted_tokens_of_each_private_key_verify_with_its_jwks(all_keys: list[Keys]) -> None:
    verifier = jwks_verifier(*all_keys)
    for keys in all_keys:
        token = mint_token("agent", sub=f"agent:{keys.kid}", private_key=keys.private, kid=keys.kid)
        assert jwt.get_unverified_header(token)["alg"] == keys.algorithm
        identity = verifier.verify(token)
        assert (identity.sub, identity.role, identity.appends_actions) == (f"agent:{keys.kid}", "agent", True)


def test_algorithm_for_names_each_key_type_and_refuses_others(rsa_keys: Keys, ec_keys: Keys, ed_keys: Keys) -> None:
    assert [algorithm_for(k.private) for k in (rsa_keys, ec_keys, ed_keys)] == ["RS256", "ES256", "EdDSA"]
    with pytest.raises(ValueError, match="RSA, EC P-256 or Ed25519"):
        algorithm_for(ec.generate_private_key(ec.SECP384R1()))


def test_load_private_key_reads_a_pem_and_refuses_other_curves(tmp_path: Path, ed_keys: Keys) -> None:
    def pem(key: Any) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    good, other = tmp_path / "ed.pem", tmp_path / "p384.pem"
    good.write_bytes(pem(ed_keys.private))
    other.write_bytes(pem(ec.generate_private_key(ec.SECP384R1())))
    assert isinstance(load_private_key(good), ed25519.Ed25519PrivateKey)
    with pytest.raises(ValueError, match="RSA, EC P-256 or Ed25519"):
        load_private_key(other)


def test_minting_refuses_a_customer_without_a_customer() -> None:
    with pytest.raises(ValueError, match="a customer token needs a customer"):
        mint_token("customer", secret=SECRET)


def test_minting_refuses_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="role must be one of viewer, customer, staff, agent"):
        mint_token("admin", secret=SECRET)  # type: ignore[arg-type]


def test_minting_takes_a_secret_or_a_private_key(ed_keys: Keys) -> None:
    with pytest.raises(ValueError, match="give a secret or a private key"):
        mint_token("staff")
    with pytest.raises(ValueError, match="give a secret or a private key"):
        mint_token("staff", secret=SECRET, private_key=ed_keys.private)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86_400), (" 1.5H ", 5400), ("366d", 366 * 86_400)],
)
def test_parse_ttl_reads_seconds_minutes_hours_and_days(text: str, seconds: float) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "fifteen", "15x", "15 minutes", "1e"])
def test_parse_ttl_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_ttl(text)


@pytest.mark.parametrize("text", ["0", "0s", "-5m", "367d", "nan", "inf"])
def test_parse_ttl_refuses_a_lifetime_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="between 1 second and a year"):
        parse_ttl(text)
