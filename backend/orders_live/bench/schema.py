"""The PostgreSQL schema the service applies, for the bench's scratch databases: the same file
(the repository's ``postgres/schema.sql``, linked here as ``sql/`` as it is under
``sources/postgres/``), read without importing the service's source layer."""

from __future__ import annotations

from importlib import resources


def schema_sql() -> str:
    return resources.files(__package__).joinpath("sql", "schema.sql").read_text()
