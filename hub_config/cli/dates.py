"""Dates and times given on the command line (UTC unless they say otherwise)."""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from .. import units


def parse_day(text: str) -> float:
    """``YYYY-MM-DD``: the start of that day, UTC."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parse_when(text: str) -> float:
    """An absolute date (YYYY-MM-DD, UTC end of day), an ISO time, or a duration from now (90d, 12h)."""
    text = text.strip()
    try:
        return time.time() + units.parse_duration(text)
    except (ValueError, TypeError, KeyError):
        pass
    try:
        if len(text) == 10:
            return parse_day(text) + 86400 - 1
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a date (YYYY-MM-DD), a time, nor a duration (90d)") from None
