"""Fixtures of the unit tests: databases of both kinds the studio supports, SQLite and
PostgreSQL (a throwaway server for the run, tests/postgres.py)."""

import pytest

from postgres import postgres_fixture

postgres = pytest.fixture(scope="session", name="postgres")(postgres_fixture)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    """A function that makes a new, empty database of the test's kind and returns its URL:
    a SQLite file in tmp_path, or a database of its own on the run's PostgreSQL server
    (dropped after the test)."""
    if request.param == "sqlite":
        yield lambda name="db": f"sqlite:///{tmp_path / name}.sqlite"
        return
    server = request.getfixturevalue("postgres")
    made = []

    def make(name="db"):
        made.append(server.database(f"{request.node.originalname}_{name}"))
        return made[-1]

    yield make
    for url in made:
        server.drop(url)
