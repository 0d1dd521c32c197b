"""The catalogue's lists one page at a time: keyset pages on the dataset's name, searched
in the database.

A page is at most ``limit`` datasets in name order after the cursor's name, so each
request reads one page whatever the member's grant count, and a cursor stays valid
when datasets are added or removed meanwhile (nothing is skipped or repeated that
existed across both requests). The cursor is opaque to clients: the last name of the
page, base64url-encoded.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass

from sqlalchemy import or_, select

from .models import NAME_RE, AccessRequest, Dataset, Grant
from .store import grant_filter

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
SUMMARY_COLUMNS = (Dataset.id, Dataset.name, Dataset.title, Dataset.description, Dataset.tags_json, Dataset.format,
                   Dataset.row_count, Dataset.size_bytes, Dataset.version, Dataset.steward)
REQUESTABLE_COLUMNS = SUMMARY_COLUMNS + (Dataset.licence, Dataset.terms, Dataset.deid_method, Dataset.deid_date)


class BadArgument(ValueError):
    """A query argument that cannot be used; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class PageQuery:
    """What one page asks: the search words, a tag, where to start and how many."""

    q: str = ""
    tag: str = ""
    after: str | None = None
    limit: int = DEFAULT_LIMIT


def encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The name a cursor continues after; BadArgument("cursor") for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name = json.loads(raw)["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise BadArgument("cursor", "is not a cursor of this catalogue (pass next_cursor back unchanged)") from None
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BadArgument("cursor", "is not a cursor of this catalogue (pass next_cursor back unchanged)")
    return name


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise BadArgument("limit", "must be a whole number") from None
    if not 1 <= value <= MAX_LIMIT:
        raise BadArgument("limit", f"must be between 1 and {MAX_LIMIT}")
    return value


def search_filter(q: str, tag: str):
    """The WHERE clause of a search: every word of ``q`` in the name, title, description or
    a tag (case-insensitive), and ``tag`` exactly among the tags."""
    clauses = []
    for word in q.split():
        clauses.append(or_(*(col.icontains(word, autoescape=True)
                             for col in (Dataset.name, Dataset.title, Dataset.description, Dataset.tags_json))))
    if tag:
        clauses.append(Dataset.tags_json.contains(json.dumps(tag), autoescape=True))  # tags are stored as JSON
    return clauses


def _page_select(columns, granted: bool, user: str, groups, page: PageQuery, now: float):
    ids = select(Grant.dataset_id).where(grant_filter(user, groups, now))
    query = select(*columns).where(Dataset.status == "published",
                                   Dataset.id.in_(ids) if granted else Dataset.id.not_in(ids),
                                   *search_filter(page.q, page.tag))
    if page.after is not None:
        query = query.where(Dataset.name > page.after)
    return query.order_by(Dataset.name).limit(page.limit + 1)  # one more: is there a next page?


def _summary(row) -> dict:
    _id, n, t, d, tags, f, r, sz, v, st = row[:10]
    return {"name": n, "title": t, "description": d, "tags": json.loads(tags), "format": f, "rows": r,
            "size_bytes": sz, "version": v, "steward": st}


def _paged(rows: list, limit: int) -> tuple[list, str | None]:
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].name)
    return rows, None


def granted_page(engine, user: str, groups, page: PageQuery, now: float | None = None) -> dict:
    """One page of the datasets granted to the member: {items, next_cursor}."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = list(conn.execute(_page_select(SUMMARY_COLUMNS, True, user, groups, page, now)))
    rows, cursor = _paged(rows, page.limit)
    return {"items": [_summary(r) for r in rows], "next_cursor": cursor}


def requestable_page(engine, user: str, groups, page: PageQuery, now: float | None = None) -> dict:
    """One page of the published datasets the member does not have: metadata only, each with the
    member's latest request for it."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = list(conn.execute(_page_select(REQUESTABLE_COLUMNS, False, user, groups, page, now)))
        rows, cursor = _paged(rows, page.limit)
        latest = {}
        if rows:
            asked = select(AccessRequest.dataset_id, AccessRequest.id, AccessRequest.status, AccessRequest.comment).where(
                AccessRequest.user == user, AccessRequest.dataset_id.in_([r.id for r in rows])).order_by(AccessRequest.id)
            for dataset_id, rid, status, comment in conn.execute(asked):
                latest[dataset_id] = {"id": rid, "status": status, "comment": comment}
    items = [{**_summary(r), "licence": r.licence, "terms": r.terms,
              "deidentification": {"method": r.deid_method, "date": r.deid_date}, "request": latest.get(r.id)}
             for r in rows]
    return {"items": items, "next_cursor": cursor}
