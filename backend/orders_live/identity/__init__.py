"""Identities: who a token stands for (JWTs, shared tokens, or an open service), the files that
change what is accepted while the service runs (a JWKS, a revocation list), stream tickets,
and the limits that count per identity. Knows no transport and no database."""
