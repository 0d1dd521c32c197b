"""What an announcement may contain: Markdown rendered and sanitised, and the
validation of every field organisers and members send (a ``BadInput`` names the
field and why; nothing is written then)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nh3
from markdown_it import MarkdownIt

KINDS = ("seminar", "call", "news")
APPLICATION_STATES = ("submitted", "under_review", "accepted", "rejected", "needs_info")
STATE_LABELS = {
    "submitted": "Submitted", "under_review": "Under review", "accepted": "Accepted",
    "rejected": "Rejected", "needs_info": "Needs more information",
}
# what a reviewer may move an application to, from each state
REVIEW_TRANSITIONS = {
    "submitted": {"under_review", "needs_info", "rejected"},
    "under_review": {"accepted", "rejected", "needs_info"},
    "needs_info": {"under_review", "rejected"},
    "accepted": set(),
    "rejected": set(),
}

TITLE_MAX = 200
SHORT_MAX = 300
URL_MAX = 500
DEFAULT_BODY_MAX = 20_000


class BadInput(ValueError):
    """Invalid input from a request: answered with 400 and this message."""


def check_transition(transitions: dict, current: str, new: str, what: str = "an application") -> None:
    """Raise ``BadInput`` naming ``status`` unless ``transitions`` lets ``what`` (an application,
    a request) move from ``current`` to ``new``."""
    if new not in transitions[current]:
        allowed = ", ".join(sorted(transitions[current])) or "none (it is final)"
        raise BadInput(f"status: {what} that is {current} cannot become {new}; allowed: {allowed}")


# ------------------------------------------------------------------ Markdown

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(["table", "strikethrough"])

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td", "img",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"},
                      "th": {"style"}, "td": {"style"}}
URL_SCHEMES = {"http", "https", "mailto"}


def _style_filter(tag, attr, value):
    # markdown-it writes table alignment as style="text-align:left"; nothing else passes
    if attr == "style":
        return value if re.fullmatch(r"text-align:(left|right|center)", value or "") else None
    return value


def render_markdown(text: str) -> str:
    """Markdown to HTML that is safe to show in any page: raw HTML in the source is
    escaped by the parser (html off), and the result goes through Ammonia (nh3) with a
    small allow-list: no scripts, no event handlers, no style, only http(s)/mailto links."""
    html = _md.render(text or "")
    return nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow", attribute_filter=_style_filter, strip_comments=True,
    )


def plain_text(text: str, limit: int = 280) -> str:
    """A short plain-text summary of a Markdown body (for feeds, banners, calendars)."""
    html = render_markdown(text)
    plain = nh3.clean(html, tags=set())
    plain = re.sub(r"\s+", " ", plain.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                   .replace("&quot;", '"').replace("&#39;", "'")).strip()
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"


# ------------------------------------------------------------------ fields

COMMON = {"kind", "title", "body", "draft", "pinned", "publish_at", "expires_at", "timezone"}
BY_KIND = {
    "seminar": {"speaker", "start", "end", "place", "link", "capacity"},
    "call": {"eligibility", "offer", "deadline"},
    "news": set(),
}
APPLICATION_FIELDS = ("project", "team", "summary", "needs")
TIME_FIELDS = ("publish_at", "expires_at", "start", "end", "deadline")


def utcnow() -> datetime:
    """Now, as the naive UTC datetime the database stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise BadInput(f"timezone: {name!r} is not a known IANA time zone (e.g. Europe/Paris, UTC)") from None


def parse_time(field: str, value, tz: ZoneInfo) -> datetime | None:
    """An ISO 8601 date-time (a naive one is read in ``tz``) to naive UTC; None stays None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadInput(f"{field}: must be an ISO 8601 date and time such as 2026-12-01T14:00:00+01:00")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"{field}: {value[:60]!r} is not an ISO 8601 date and time such as 2026-12-01T14:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        return parsed.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00: before the first representable UTC time
        raise BadInput(f"{field}: {value[:60]!r} is outside the dates the studio can hold") from None


def _text(field, value, limit, *, required=False, multiline=False) -> str | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise BadInput(f"{field}: is required")
        return None if not multiline else ""
    if not isinstance(value, str):
        raise BadInput(f"{field}: must be text")
    if "\x00" in value:
        raise BadInput(f"{field}: must not contain NUL characters")
    value = value if multiline else value.strip()
    if len(value) > limit:
        raise BadInput(f"{field}: is {len(value)} characters long; at most {limit} are allowed")
    return value


def _bool(field, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("on", "true", "1", "yes"):
        return True
    if value is None or (isinstance(value, str) and value.lower() in ("", "off", "false", "0", "no")):
        return False
    raise BadInput(f"{field}: must be true or false")


def _capacity(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput("capacity: must be a whole number of seats, or empty for no limit")
    if not 1 <= value <= 100_000:
        raise BadInput("capacity: must be between 1 and 100000")
    return value


def _url(field, value) -> str | None:
    value = _text(field, value, URL_MAX)
    if value is None:
        return None
    if not re.match(r"^https?://[^\s<>\"']+$", value, re.IGNORECASE):
        raise BadInput(f"{field}: must be an http:// or https:// address")
    return value


def validate_item(data: dict, *, current: dict | None = None, body_max: int = DEFAULT_BODY_MAX,
                  default_tz: str = "UTC", now: datetime | None = None) -> dict:
    """Check a new item (``current`` None) or a change to one; return the columns to store.

    ``data`` is what the request sent (JSON or form fields). Unknown fields, a wrong
    type, an impossible date or a date that must be in the future and is not raise
    ``BadInput``."""
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    now = now or utcnow()
    kind = data.get("kind", current["kind"] if current else None)
    if kind not in KINDS:
        raise BadInput(f"kind: must be one of {', '.join(KINDS)}")
    if current and kind != current["kind"]:
        raise BadInput("kind: cannot be changed; create a new item instead")
    allowed = COMMON | BY_KIND[kind]
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadInput(f"unknown field(s) for a {kind}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")

    merged = dict(current or {})
    merged.update(data)
    tz_name = _text("timezone", merged.get("timezone"), 64) or default_tz
    tz = zone(tz_name)
    out = {
        "kind": kind,
        "title": _text("title", merged.get("title"), TITLE_MAX, required=True),
        "body": _text("body", merged.get("body"), body_max, multiline=True),
        "draft": _bool("draft", merged.get("draft", False)),
        "pinned": _bool("pinned", merged.get("pinned", False)),
        "timezone": tz_name,
    }
    times = {}
    for field in TIME_FIELDS:
        if field not in allowed:
            continue
        if field in data or current is None:
            times[field] = parse_time(field, data.get(field), tz)
        else:
            times[field] = current.get(field)  # already naive UTC
    def changed(field):  # sent, and different from what is stored (a form sends every field)
        return current is None or (field in data and times[field] != current.get(field))

    out["publish_at"], out["expires_at"] = times["publish_at"], times["expires_at"]
    if out["publish_at"] and out["expires_at"] and out["expires_at"] <= out["publish_at"]:
        raise BadInput("expires_at: must be after publish_at")
    if changed("expires_at") and out["expires_at"] and out["expires_at"] <= now:
        raise BadInput("expires_at: is in the past")

    if kind == "seminar":
        out["speaker"] = _text("speaker", merged.get("speaker"), SHORT_MAX, required=True)
        out["place"] = _text("place", merged.get("place"), SHORT_MAX)
        out["link"] = _url("link", merged.get("link"))
        if not out["place"] and not out["link"]:
            raise BadInput("place: give a place or a link (or both)")
        out["capacity"] = _capacity(merged.get("capacity"))
        start, end = times["start"], times["end"]
        if start is None:
            raise BadInput("start: is required")
        if end is None:
            raise BadInput("end: is required")
        if end <= start:
            raise BadInput("end: must be after start")
        if changed("start") and start <= now:
            raise BadInput("start: is in the past")
        out["start_at"], out["end_at"] = start, end
    elif kind == "call":
        out["eligibility"] = _text("eligibility", merged.get("eligibility"), body_max, multiline=True)
        out["offer"] = _text("offer", merged.get("offer"), body_max, multiline=True)
        deadline = times["deadline"]
        if deadline is None:
            raise BadInput("deadline: is required")
        if changed("deadline") and deadline <= now:
            raise BadInput("deadline: is in the past")
        out["deadline"] = deadline
    return out


def validate_application(data: dict, body_max: int = DEFAULT_BODY_MAX) -> dict:
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    unknown = sorted(set(data) - set(APPLICATION_FIELDS))
    if unknown:
        raise BadInput(f"unknown field(s) for an application: {', '.join(unknown)}; allowed: {', '.join(APPLICATION_FIELDS)}")
    return {
        "project": _text("project", data.get("project"), TITLE_MAX, required=True),
        "team": _text("team", data.get("team"), SHORT_MAX * 4, required=True, multiline=True),
        "summary": _text("summary", data.get("summary"), body_max, required=True, multiline=True),
        "needs": _text("needs", data.get("needs"), body_max, required=True, multiline=True),
    }


def validate_review(data: dict, body_max: int = DEFAULT_BODY_MAX) -> dict:
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    unknown = sorted(set(data) - {"status", "comment"})
    if unknown:
        raise BadInput(f"unknown field(s) for a review: {', '.join(unknown)}; allowed: comment, status")
    status = data.get("status") or None
    if status is not None and status not in APPLICATION_STATES:
        raise BadInput(f"status: must be one of {', '.join(APPLICATION_STATES)}")
    comment = _text("comment", data.get("comment"), body_max, multiline=True) or ""
    if status is None and not comment.strip():
        raise BadInput("give a new status, a comment, or both")
    return {"status": status, "comment": comment}
