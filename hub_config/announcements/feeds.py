"""Calendars (iCalendar, with the ``icalendar`` package) and the Atom feed (``feedgen``)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from feedgen.feed import FeedGenerator
from icalendar import Calendar, Event

from .content import plain_text
from .models import Item

PRODID = "-//AI Studio//announcements//EN"


def _aware(value: datetime, tz: str) -> datetime:
    return value.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz))


def _event(item: Item, base_url: str, domain: str) -> Event:
    event = Event()
    event.add("uid", f"seminar-{item.id}@{domain}")
    event.add("dtstamp", _aware(item.updated_at, "UTC"))
    event.add("last-modified", _aware(item.updated_at, "UTC"))
    event.add("dtstart", _aware(item.start_at, item.timezone))
    event.add("dtend", _aware(item.end_at, item.timezone))
    event.add("summary", f"{item.title} ({item.speaker})" if item.speaker else item.title)
    description = plain_text(item.body, 4000)
    if item.link:
        description = f"{description}\n\nJoin: {item.link}".strip()
    event.add("description", description)
    if item.place or item.link:
        event.add("location", item.place or item.link)
    event.add("url", f"{base_url}items/{item.id}")
    return event


def calendar(items: list[Item], base_url: str, domain: str, name: str = "AI Studio seminars") -> bytes:
    """An iCalendar file (RFC 5545) of ``items`` (seminars), with VTIMEZONEs for their zones."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for item in items:
        cal.add_component(_event(item, base_url, domain))
    cal.add_missing_timezones()
    return cal.to_ical()


def atom(items: list[dict], base_url: str, feed_url: str, title: str = "AI Studio announcements") -> bytes:
    """An Atom feed of the current items; their sanitised HTML goes in as escaped text (type html)."""
    fg = FeedGenerator()
    fg.id(feed_url)
    fg.title(title)
    fg.link(href=base_url, rel="alternate")
    fg.link(href=feed_url, rel="self")
    fg.subtitle("Seminars, the incubation programme and news")
    updated = max((datetime.fromisoformat(i["updated_at"]) for i in items), default=datetime(2026, 1, 1, tzinfo=timezone.utc))
    fg.updated(updated)
    for item in reversed(items):  # feedgen puts the last added first
        entry = fg.add_entry()
        entry.id(f"{base_url}items/{item['id']}")
        entry.title(item["title"])
        entry.link(href=f"{base_url}items/{item['id']}")
        entry.author({"name": item["created_by"]})
        entry.published(item["publish_at"] or item["created_at"])
        entry.updated(item["updated_at"])
        entry.category(term=item["kind"])
        entry.summary(item["summary"] or item["title"])
        entry.content(item["body_html"], type="html")
    return fg.atom_str(pretty=True)
