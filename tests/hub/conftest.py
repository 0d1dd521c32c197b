"""Fixtures of the real-hub tests: the run's throwaway PostgreSQL server (tests/postgres.py)."""

import pytest

from postgres import postgres_fixture

postgres = pytest.fixture(scope="session", name="postgres")(postgres_fixture)
