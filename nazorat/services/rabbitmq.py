"""A RabbitMQ cluster of our own on this host: for the cluster test tier, the cluster
benchmark and a local try-out of the RabbitMQ backend (docs: deploy/rabbitmq.md).

It never touches the machine's own RabbitMQ (5672) or epmd (4369). Each cluster has its
own node names (``nz<i>-<tag>@localhost``), Erlang cookie, data folders, ports (AMQP,
MQTT, management HTTP, Erlang distribution) and its own epmd, started by us on its own
port (``ERL_EPMD_PORT``) as our child, so tearing the cluster down leaves nothing behind.
The nodes are ``/usr/lib/rabbitmq/bin/rabbitmq-server`` run directly, configured only
through ``RABBITMQ_*`` variables and files in the cluster's folder (the system's
``/etc/rabbitmq`` is not read).

Formation: ``classic_config`` peer discovery with every node listed. The first node is
started alone and waited for; the others then join it (started together, nodes can form
separate clusters). ``cluster_partition_handling = pause_minority``: a node cut off from
the majority pauses rather than accepting writes on its own.

Plugins: ``rabbitmq_mqtt`` (devices publish over MQTT 3.1.1 into ``amq.topic``),
``rabbitmq_consistent_hash_exchange`` (the partitions) and ``rabbitmq_management`` (the
HTTP API that ``nazorat broker provision`` uses to declare users and permissions).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from nazorat.services.errors import ServiceError
from nazorat.services.net import free_port, wait_for_port

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQCTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
PLUGINS = ("rabbitmq_mqtt", "rabbitmq_consistent_hash_exchange", "rabbitmq_management")
ADMIN_USER = "nazorat-admin"


def _epmd() -> str | None:
    found = shutil.which("epmd")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))
    return str(candidates[-1]) if candidates else None


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here (None: it can)."""
    if not RABBITMQ_SERVER.exists():
        return f"{RABBITMQ_SERVER} not found (install the Debian package rabbitmq-server)"
    plugin_dirs = list(Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*/plugins"))
    have = {p.name.rsplit("-", 1)[0] for d in plugin_dirs for p in d.iterdir()}
    missing = [p for p in PLUGINS if p not in have]
    if missing:
        return f"RabbitMQ plugins missing: {', '.join(missing)}"
    if _epmd() is None:
        return "epmd (Erlang) not found"
    return None


@dataclass
class RabbitNode:
    index: int
    name: str  # Erlang node name, e.g. nz1-ab12cd@localhost
    directory: Path
    amqp_port: int
    mqtt_port: int
    http_port: int
    dist_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.directory / "rabbit.pid"

    @property
    def log_dir(self) -> Path:
        return self.directory / "log"

    def beam_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class RabbitCluster:
    """``size`` nodes on 127.0.0.1; ``start()`` forms the cluster, ``stop()`` removes it."""

    base_dir: Path
    size: int = 3
    host: str = "127.0.0.1"
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    nodes: list[RabbitNode] = field(default_factory=list)
    _epmd_proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir).resolve()
        self.epmd_port = free_port()
        self.cookie = secrets.token_hex(16).upper()
        if not self.nodes:
            ports: list[int] = []
            while len(ports) < 4 * self.size:  # distinct: free_port may hand out one port twice
                p = free_port()
                if p not in ports and p != self.epmd_port:
                    ports.append(p)
            self.nodes = [RabbitNode(i, f"nz{i + 1}-{self.tag}@localhost", self.base_dir / f"node{i + 1}",
                                     ports[4 * i], ports[4 * i + 1], ports[4 * i + 2], ports[4 * i + 3])
                          for i in range(self.size)]

    # --- addresses ----------------------------------------------------------------------
    def amqp_urls(self, user: str, password: str) -> list[str]:
        return [f"amqp://{user}:{password}@{self.host}:{n.amqp_port}/%2F" for n in self.nodes]

    def admin_urls(self) -> list[str]:
        return self.amqp_urls(ADMIN_USER, self.admin_password)

    def http_urls(self) -> list[str]:
        return [f"http://{self.host}:{n.http_port}" for n in self.nodes]

    # --- files and environment ----------------------------------------------------------
    def _config(self, node: RabbitNode) -> str:
        peers = "\n".join(f"cluster_formation.classic_config.nodes.{i + 1} = {n.name}"
                          for i, n in enumerate(self.nodes))
        return f"""\
listeners.tcp.default = {self.host}:{node.amqp_port}
mqtt.listeners.tcp.default = {self.host}:{node.mqtt_port}
management.tcp.ip = {self.host}
management.tcp.port = {node.http_port}
mqtt.allow_anonymous = false
mqtt.vhost = /
mqtt.exchange = amq.topic
cluster_formation.peer_discovery_backend = classic_config
{peers}
cluster_partition_handling = pause_minority
default_user = {ADMIN_USER}
default_pass = {self.admin_password}
default_user_tags.administrator = true
loopback_users = none
disk_free_limit.absolute = 50MB
# three nodes share one machine: each may use a fifth of its memory before it blocks
# publishers (the default, 0.4 each, adds up to more than the machine has)
vm_memory_high_watermark.relative = 0.2
log.console = false
log.file.level = info
"""

    def env(self, node: RabbitNode) -> dict[str, str]:
        d = node.directory
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        return {
            **keep,
            "HOME": str(d),  # the Erlang cookie is read from $HOME/.erlang.cookie
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.log_dir),
            "RABBITMQ_PID_FILE": str(node.pid_file),
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _prepare(self, node: RabbitNode) -> None:
        d = node.directory
        d.mkdir(parents=True, exist_ok=True)
        node.log_dir.mkdir(exist_ok=True)
        (d / "rabbitmq.conf").write_text(self._config(node))
        (d / "rabbitmq-env.conf").write_text("")
        (d / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")
        cookie = d / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)

    # --- life cycle ---------------------------------------------------------------------
    def start(self, timeout_s: float = 180.0) -> None:
        reason = unavailable_reason()
        if reason:
            raise ServiceError(reason)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        epmd = _epmd()
        assert epmd is not None
        self._epmd_proc = subprocess.Popen([epmd, "-port", str(self.epmd_port)], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(self.host, self.epmd_port, 10)
            deadline = time.monotonic() + timeout_s
            self.start_node(0)
            self.wait_node(0, deadline)
            for i in range(1, self.size):
                self.start_node(i)
            for i in range(1, self.size):
                self.wait_node(i, deadline)
            self.wait_members(self.size, deadline)
        except BaseException:
            self.stop()
            raise

    def start_node(self, index: int) -> None:
        node = self.nodes[index]
        self._prepare(node)
        with open(node.log_dir / "stdout.log", "ab") as out:
            node.proc = subprocess.Popen([str(RABBITMQ_SERVER)], env=self.env(node), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=node.directory,
                                         start_new_session=True)

    def wait_node(self, index: int, deadline: float) -> None:
        """Until the node's AMQP and MQTT listeners accept connections (it has booted)."""
        node = self.nodes[index]
        for port in (node.amqp_port, node.mqtt_port, node.http_port):
            while True:
                if node.proc is not None and node.proc.poll() is not None:
                    raise ServiceError(f"RabbitMQ node {node.name} exited with {node.proc.returncode}:\n"
                                       f"{self.log_tail(index)}")
                try:
                    wait_for_port(self.host, port, 1.0)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise ServiceError(f"RabbitMQ node {node.name} did not start:\n{self.log_tail(index)}") \
                            from None

    def log_tail(self, index: int, chars: int = 3000) -> str:
        node = self.nodes[index]
        text = ""
        for path in sorted(node.log_dir.glob("*.log")):
            text += f"--- {path.name}\n" + path.read_text(errors="replace")[-chars:]
        return text

    def ctl(self, *args: str, node: int | None = None, timeout_s: float = 60.0) -> str:
        """``rabbitmqctl`` against one running node (the first running one by default)."""
        index = node if node is not None else next(i for i, n in enumerate(self.nodes) if n.running)
        n = self.nodes[index]
        res = subprocess.run([str(RABBITMQCTL), "-n", n.name, *args], env=self.env(n), capture_output=True,
                             check=False, timeout=timeout_s, cwd=n.directory)
        if res.returncode != 0:
            raise ServiceError(f"rabbitmqctl {' '.join(args)} failed ({res.returncode}): "
                               f"{res.stderr.decode(errors='replace')[-2000:]}")
        return res.stdout.decode()

    def running_members(self) -> list[str]:
        import json

        status = json.loads(self.ctl("cluster_status", "--formatter", "json"))
        return list(status.get("running_nodes", []))

    def wait_members(self, count: int, deadline: float) -> None:
        while True:
            try:
                members = self.running_members()
            except (ServiceError, subprocess.TimeoutExpired, ValueError):
                members = []
            if len(members) >= count:
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"the cluster has {len(members)} running nodes of {count}: {members}")
            time.sleep(1.0)

    def kill(self, index: int) -> None:
        """kill -9 a node's Erlang VM (not a clean stop)."""
        node = self.nodes[index]
        pid = node.beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if node.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)  # the wrapper shell and anything it left
            node.proc.wait(30)

    def index_of(self, node_name: str) -> int:
        return next(n.index for n in self.nodes if n.name == node_name)

    def stop(self) -> None:
        """Kill every node and our epmd, and remove the cluster's folders."""
        for i, node in enumerate(self.nodes):
            if node.proc is not None:
                self.kill(i)
        if self._epmd_proc is not None:
            self._epmd_proc.kill()
            self._epmd_proc.wait(10)
            self._epmd_proc = None
        shutil.rmtree(self.base_dir, ignore_errors=True)


__all__ = ["ADMIN_USER", "RabbitCluster", "RabbitNode", "unavailable_reason"]
