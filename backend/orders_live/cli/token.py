"""``orders-live token``: mint a JWT for the demo, the tests and operators.

    orders-live token --role customer --customer "Ada Lovelace" --ttl 15m

It signs with the service's HS256 secret (``--secret``, ``--secret-file``, or
``$ORDERS_LIVE_JWT_SECRET``), or with a private key whose public half is in the service's JWKS
(``--private-key key.pem --kid <its kid>``). Claims follow the service's settings: the issuer,
the audience and the names of the role and customer claims.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jwt

from orders_live.domain.identity import ROLES
from orders_live.identity.minting import load_private_key, mint_token, parse_ttl
from orders_live.settings import Settings


def _ttl(text: str) -> float:
    try:
        return parse_ttl(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_token_parser(commands: Any) -> None:
    text = "mint a JWT (for orders-live's JWT mode)"
    token = commands.add_parser("token", help=text, description=text)
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--customer", help="the customer's name (required for --role customer)")
    token.add_argument("--sub", help="the identity (default: customer:<name>, or <role>:<random>)")
    token.add_argument("--ttl", type=_ttl, default=900.0, help="lifetime: 90s, 15m, 2h, 1d (default 15m)")
    token.add_argument("--jti", help="a token id (revocation can name it; default random)")
    key = token.add_mutually_exclusive_group()
    key.add_argument("--secret", help="the HS256 secret (default $ORDERS_LIVE_JWT_SECRET)")
    key.add_argument("--secret-file", type=Path, help="a file holding the HS256 secret")
    key.add_argument("--private-key", type=Path, help="a PEM private key (RSA, EC P-256 or Ed25519)")
    token.add_argument("--kid", help="the key id to put in the header (with --private-key)")


def run_token_command(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        secret = args.secret or (args.secret_file.read_text().strip() if args.secret_file else None) or None
        private_key = load_private_key(args.private_key) if args.private_key else None
    except (OSError, ValueError, TypeError) as exc:
        print(f"cannot use that key: {exc}", file=sys.stderr)
        return 2
    if secret is None and private_key is None:
        secret = settings.jwt_secret
    if secret is None and private_key is None:
        print("give --secret, --secret-file or --private-key (or set ORDERS_LIVE_JWT_SECRET)", file=sys.stderr)
        return 2
    try:
        token = mint_token(
            args.role,
            sub=args.sub,
            customer=args.customer,
            ttl=args.ttl,
            secret=secret,
            private_key=private_key,
            kid=args.kid,
            rules=settings.jwt_rules(),
            extra={"jti": args.jti} if args.jti else None,
        )
    except (ValueError, jwt.PyJWTError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(token)
    return 0
