"""Device fleet simulator: registers through the HTTP API, publishes over MQTT, and
knows the ground truth of what it injected.

- ``simulator.scenarios``: a seeded fleet, its messages and its truth (``build``)
- ``simulator.background``: a compliant fleet at national scale, generated as it is sent
- ``simulator.movement``: true tracks and honest receiver noise
- ``simulator.registry``: the public API client (registry set-up, alerts read-back)
- ``simulator.publisher``: paced QoS 1 replay, one or several processes
- ``simulator.verify``: recall, false alerts, detection delays
- ``simulator.run``: all of it in one call (``simulate``)
- ``simulator.fleet``: the small demo fleet of ``nazorat run``

It imports nothing of the engine but ``telemetry.wire``.
"""

from simulator.fleet import Fleet, SimDevice, build_fleet, publish, register_fleet

__all__ = ["Fleet", "SimDevice", "build_fleet", "publish", "register_fleet"]
