"""Announcements: seminars with registration and a waiting list, incubation calls with
applications and review, and news; a hub-managed service (``service``) with its own
database (``models``, ``store``, ``migrations/``), its feeds (``feeds``) and the banner
of the hub's home page (``banner``, ``templates/hub/announcements_banner.html``, included by the home page)."""
