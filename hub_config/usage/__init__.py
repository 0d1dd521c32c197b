"""Usage records: one row per server start (``store``, ``models``, ``migrations/``),
reports, and the admins' usage page (``service``)."""
