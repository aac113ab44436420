"""Fast tier: ``orders-live token`` as a child process: the key it signs with (``--secret``,
``--secret-file``, ``$ORDERS_LIVE_JWT_SECRET``, ``--private-key``), the claims it puts in, and
how it refuses what it cannot mint (exit 2 and a sentence, never a traceback)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from conftest import ORDERS_LIVE

pytestmark = pytest.mark.fast

SECRET = "the-token-command-secret-of-32-chars-or-more"


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def token(self) -> str:
        assert self.code == 0, self.stderr
        lines = self.stdout.splitlines()
        assert len(lines) == 1, self.stdout
        return lines[0]


def run_token(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``orders-live token ARGS`` with no ORDERS_LIVE_* setting but those in ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_LIVE_")}
    environment.update(env or {})
    done = subprocess.run([*ORDERS_LIVE, "token", *args], capture_output=True, text=True, env=environment, timeout=30)
    return Ran(done.returncode, done.stdout, done.stderr)


def decoded(token: str, key: Any = SECRET, algorithm: str = "HS256", **options: Any) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=[algorithm], **options)
    return claims


def pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_a_customer_token_signed_with_secret_carries_role_customer_sub_and_exp() -> None:
    ran = run_token("--role", "customer", "--customer", "Ada Lovelace", "--ttl", "15m", "--secret", SECRET)
    claims = decoded(ran.token)
    assert (claims["role"], claims["customer"], claims["sub"]) == ("customer", "Ada Lovelace", "customer:Ada Lovelace")
    assert claims["exp"] == pytest.approx(time.time() + 900, abs=10)
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


def test_a_token_signed_with_a_secret_file_takes_the_given_sub_and_jti(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{SECRET}\n")
    ran = run_token(
        "--role", "staff", "--sub", "staff:ada", "--jti", "jti-42", "--ttl", "2h", "--secret-file", str(secret_file)
    )
    claims = decoded(ran.token)
    assert (claims["role"], claims["sub"], claims["jti"]) == ("staff", "staff:ada", "jti-42")
    assert "customer" not in claims
    assert claims["exp"] == pytest.approx(time.time() + 7200, abs=10)


def test_the_secret_comes_from_the_environment_with_the_services_claim_settings() -> None:
    ran = run_token(
        "--role",
        "customer",
        "--customer",
        "Ada",
        "--ttl",
        "90",
        env={
            "ORDERS_LIVE_JWT_SECRET": SECRET,
            "ORDERS_LIVE_JWT_ISSUER": "https://issuer.example",
            "ORDERS_LIVE_JWT_AUDIENCE": "orders-live",
            "ORDERS_LIVE_JWT_ROLE_CLAIM": "https://example.com/role",
            "ORDERS_LIVE_JWT_CUSTOMER_CLAIM": "tenant",
        },
    )
    claims = decoded(ran.token, issuer="https://issuer.example", audience="orders-live")
    assert (claims["https://example.com/role"], claims["tenant"]) == ("customer", "Ada")
    assert "role" not in claims and "customer" not in claims
    assert claims["exp"] == pytest.approx(time.time() + 90, abs=10)


def test_an_ed25519_private_key_signs_with_its_kid_even_with_a_secret_in_the_environment(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem(key))
    ran = run_token(
        "--role",
        "agent",
        "--ttl",
        "1d",
        "--private-key",
        str(key_file),
        "--kid",
        "ed-2026",
        env={"ORDERS_LIVE_JWT_SECRET": SECRET},
    )
    header = jwt.get_unverified_header(ran.token)
    assert (header["alg"], header["kid"]) == ("EdDSA", "ed-2026")
    claims = decoded(ran.token, key.public_key(), "EdDSA")
    assert claims["role"] == "agent"
    assert claims["sub"].startswith("agent:")
    assert claims["exp"] == pytest.approx(time.time() + 86_400, abs=10)


def test_a_customer_role_without_a_customer_exits_2_and_says_so() -> None:
    ran = run_token("--role", "customer", "--secret", SECRET)
    assert ran.code == 2
    assert ran.stdout == ""
    assert "a customer token needs a customer" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_no_secret_at_all_exits_2_and_says_what_to_give() -> None:
    ran = run_token("--role", "staff")
    assert ran.code == 2
    assert ran.stdout == ""
    assert "give --secret, --secret-file or --private-key (or set ORDERS_LIVE_JWT_SECRET)" in ran.stderr


def test_a_bad_ttl_is_an_argument_error() -> None:
    ran = run_token("--role", "staff", "--secret", SECRET, "--ttl", "15x")
    assert ran.code == 2
    assert "argument --ttl: not a duration: '15x'" in ran.stderr
    assert ran.stdout == ""


def p384_key(path: Path) -> None:
    path.write_bytes(pem(ec.generate_private_key(ec.SECP384R1())))


@pytest.mark.parametrize(
    ("option", "write", "said"),
    [
        ("--secret-file", lambda path: path.write_text("  \n"), "secret"),
        ("--private-key", None, "key-material"),
        ("--private-key", p384_key, "RSA, EC P-256 or Ed25519"),
    ],
    ids=["empty-secret-file", "missing-key-file", "p384-key"],
)
def test_a_key_the_command_cannot_use_exits_2_with_a_message_not_a_traceback(
    tmp_path: Path, option: str, write: Callable[[Path], object] | None, said: str
) -> None:
    path = tmp_path / "key-material"
    if write is not None:
        write(path)
    ran = run_token("--role", "staff", option, str(path))
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.code == 2
    assert ran.stdout == ""
    assert said in ran.stderr
