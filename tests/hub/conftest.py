"""Fixtures of the real-hub tests: the run's throwaway PostgreSQL server (tests/postgres.py)
and, for the modules whose studio sends mail, a real SMTP server on loopback."""

import pytest

from harness import SMTPInbox
from postgres import postgres_fixture

postgres = pytest.fixture(scope="session", name="postgres")(postgres_fixture)


@pytest.fixture(scope="module")
def inbox():
    """An SMTP server (aiosmtpd) on loopback for one module's studio, and what it received."""
    box = SMTPInbox().start()
    yield box
    box.stop()
