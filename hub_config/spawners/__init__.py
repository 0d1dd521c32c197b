"""The spawners: what any of ours shares (``mixin``: profiles, quotas, usage, run-time
limits, progress; ``datasets``: mounts decided on the hub), and the two adapters that
run a server: a local process (``local``) or a Kubernetes pod (``kube``)."""
