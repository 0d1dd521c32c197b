"""Members waiting for GPUs: a fair queue with reservations (docs/queue.md).

``core`` decides (pure), ``store`` keeps the line in the usage database, ``manager`` is
the queue in the hub process beside the quota decision, ``handlers`` its API and page,
``hub`` wires it into the running hub (reservation notices, the hub's own starts)."""
