"""AI Studio's trusted side: everything the hub process and the hub-managed services run.

``config`` loads and validates the studio config; ``configurer`` turns it into the hub's
traitlets config; ``profiles``, ``quotas``, ``gpus`` and ``units`` decide launches;
``db`` is the one engine factory and migration runner. One subpackage per concern:
``auth``, ``spawners``, ``usage``, ``datasets``, ``announcements``, ``services`` (the base
of every hub-managed service) and ``cli`` (the ``aistudio`` command). See
docs/architecture.md for the map and the import rules.
"""

__version__ = "0.1.0"
