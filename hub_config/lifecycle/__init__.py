"""A running server's life: warnings before its run-time limit, extensions within the
policy, GPU-idle culling (docs/lifecycle.md).

``runtime`` decides (pure), ``samplers`` reads GPU utilisation (NVML, DCGM exporter, a
file), ``hub`` is the loop in the hub process that warns, samples and stops, and
``handlers`` the API and the hub pages' part."""
