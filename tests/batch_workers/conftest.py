"""Fixtures for the multi-worker tests: the PostgreSQL server of `tests/batch_pg` (its session
fixture starts one when ``IMUZEKIT_TEST_POSTGRES_URL`` names none), one schema per test."""

from __future__ import annotations

from tests.batch_pg.conftest import pg_schema, pg_url

__all__ = ["pg_schema", "pg_url"]
