"""The queue's rows in the usage database (table ``queue_entry``, usage migration 0003):
the line survives a hub restart. The hub is the only writer; ``aistudio queue list``
reads."""

from __future__ import annotations

import json
import time

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..usage.models import QueueEntry
from .core import RESERVED, Entry


class AlreadyQueued(Exception):
    """A member waits for at most one launch at a time."""


def _entry(row: QueueEntry) -> Entry:
    return Entry(
        id=row.id, user=row.user, groups=tuple(json.loads(row.groups or "[]")), gpus=row.gpus,
        gpu_type=row.gpu_type, joined_at=row.joined_at, state=row.state, reserved_until=row.reserved_until,
        server_name=row.server_name, profile=row.profile, auto_start=bool(row.auto_start),
        user_options=json.loads(row.user_options or "{}"),
    )


class QueueStore:
    def __init__(self, engine: Engine):
        self.engine = engine  # the usage store's: its migrations made the table

    def entries(self) -> list[Entry]:
        with Session(self.engine) as s:
            return [_entry(r) for r in s.scalars(select(QueueEntry).order_by(QueueEntry.id))]

    def add(self, *, user: str, groups, server_name: str, profile: str, user_options: dict, gpus: int,
            gpu_type: str | None, auto_start: bool, now: float | None = None) -> Entry:
        row = QueueEntry(
            user=user, groups=json.dumps(sorted(set(groups))), server_name=server_name, profile=profile,
            user_options=json.dumps(user_options, sort_keys=True), gpus=gpus, gpu_type=gpu_type,
            auto_start=auto_start, joined_at=time.time() if now is None else now, state="waiting",
        )
        try:
            with Session(self.engine) as s, s.begin():
                s.add(row)
                s.flush()
                return _entry(row)
        except IntegrityError:
            raise AlreadyQueued(user) from None

    def reserve(self, entry_id: int, until: float, now: float | None = None) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(update(QueueEntry).where(QueueEntry.id == entry_id).values(
                state=RESERVED, reserved_at=time.time() if now is None else now, reserved_until=until))

    def remove(self, entry_id: int) -> bool:
        with Session(self.engine) as s, s.begin():
            return s.execute(delete(QueueEntry).where(QueueEntry.id == entry_id)).rowcount > 0
