"""Device fleet simulator: registers through the HTTP API, publishes over MQTT."""

from simulator.fleet import Fleet, SimDevice, build_fleet, publish, register_fleet

__all__ = ["Fleet", "SimDevice", "build_fleet", "publish", "register_fleet"]
