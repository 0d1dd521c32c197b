"""Datasets in members' servers: which ones a start gets is decided here, on the hub,
from the registry (``hub_config.datasets``); the local and Kubernetes spawners put
them in place (local links and groups, or read-only pod volumes)."""

from __future__ import annotations

import os

from traitlets import HasTraits, List, Unicode

from ..datasets import DatasetStore, MountSpec, dataset_store, mounts
from .mixin import tell

# the folder of granted datasets, as the server's Datasets panel shows it
SERVER_DIR_ENV = "AISTUDIO_DATASETS_DIR"


class DatasetsSpawnerMixin(HasTraits):
    """Mix into a Spawner (with ProfileSpawnerMixin): decide, record and report mounts."""

    datasets_db_url = Unicode(
        "", help="SQLAlchemy URL of the datasets registry; empty: no datasets are mounted."
    ).tag(config=True)

    datasets_mount_root = Unicode("/datasets", help="Where servers find granted datasets: <root>/<name>.").tag(
        config=True
    )

    datasets_group_prefix = Unicode(
        "aistudio-ds-", help="Local mode: prefix of the system group of each dataset."
    ).tag(config=True)

    mounted_datasets = List(help="Datasets the current (or last) server got, by name.")

    @property
    def datasets(self) -> DatasetStore | None:
        return dataset_store(self.datasets_db_url) if self.datasets_db_url else None

    def decide_datasets(self) -> tuple[list[MountSpec], list[str]]:
        """The datasets granted to the user now, directly or through a group, unexpired (decided
        here on the hub from the registry), and those the last server had that are gone since."""
        if self.datasets is None:
            return [], []
        granted = self.datasets.mounts_for(self.user.name, self.user_groups())
        gone = sorted(set(self.mounted_datasets) - {m.name for m in granted})
        return granted, gone

    def record_mounts(self, granted: list[MountSpec], gone: list[str], where: str, skipped=()) -> None:
        """Audit and report the mounts step; remember what this server got."""
        names = [m.name for m in granted if m.name not in set(skipped)]
        if self.datasets is not None:
            for m in granted:
                if m.name in names:
                    self.datasets.audit("mount", self.user.name, m.name, server=self.name, expires_at=m.expires_at)
                    tell("mounted", dataset=m.name)
            for name in gone:
                self.datasets.audit("unmount", self.user.name, name, server=self.name,
                                    reason="access revoked or expired")
        if names:
            self.report(50, f"Mounting datasets read-only at {where}: {', '.join(names)}")
        elif self.datasets is not None:
            self.report(50, "Mounting datasets: none granted to you")
        if gone:
            self.report(50, f"No longer available to you (access revoked or expired): {', '.join(gone)}")
        for name in skipped:
            self.report(50, f"Dataset {name} cannot be mounted here; ask its steward")
        self.mounted_datasets = names

    async def mount_datasets_locally(self, *, system: bool, account: str | None, home: str) -> None:
        """The mounts step of a local server: plan, apply, report, audit, and leave a notice
        in the member's home when datasets of the last server are gone."""
        granted, gone = self.decide_datasets()
        if self.datasets is None:
            return
        root = self.datasets_mount_root
        if not system:
            try:
                mounts.ensure_link_root(root, as_root=False)
                if not os.access(root, os.W_OK):
                    raise OSError
            except OSError:
                root = os.path.join(home, "datasets")
                os.makedirs(root, exist_ok=True)
        self.datasets_dir = root
        published = {d.name for d in self.datasets.datasets(status="published")}
        plan = mounts.plan_local(granted, published=published, system=system, root=root,
                                 group_prefix=self.datasets_group_prefix)
        skipped = await mounts.apply_local(plan, account=account if system else None,
                                           group_prefix=self.datasets_group_prefix, log=self.log,
                                           log_name=self._log_name)
        self.record_mounts(granted, gone, root, skipped)
        if not system and granted:
            self.report(50, "Demo mode: dataset files are not protected (every server runs as one account)")
        if gone:
            try:
                await mounts.write_as(account if system else None, os.path.join(home, mounts.NOTICE_FILE),
                                      mounts.notice_text(gone))
            except (mounts.MountError, OSError) as e:
                self.log.warning("%s: cannot write the datasets notice: %s", self._log_name, e)

    def get_env(self):
        env = super().get_env()
        if self.datasets_db_url:
            env[SERVER_DIR_ENV] = getattr(self, "datasets_dir", None) or self.datasets_mount_root
        return env

    def get_state(self):
        state = super().get_state()
        if self.mounted_datasets:
            state["datasets"] = list(self.mounted_datasets)
        return state

    def load_state(self, state):
        super().load_state(state)
        self.mounted_datasets = list(state.get("datasets", []))
