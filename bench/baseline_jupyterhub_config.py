"""JupyterHub config of the spawn benchmark's baseline (see bench/spawn_bench.py).

Exactly the studio's hub (same hub, proxy, login, singleuser command, default_url
and timeouts, from the same studio config through AISTUDIO_CONFIG...), with one
change: stock ``SimpleLocalProcessSpawner`` in place of ``StudioLocalSpawner``.
"""

import os

from hub_config.startup import prepare

c = get_config()  # noqa: F821 (provided by JupyterHub)
c.merge(prepare())
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(os.environ["SPAWN_BENCH_HOMES"], "{username}")
