"""The MQTT broker the project starts when none is configured.

``MosquittoBroker`` runs the ``mosquitto`` binary (when on PATH) with the project's own
configuration (deploy/mosquitto/), as our child process, so tests can kill and restart
it. With a password file it enforces per-device logins and ``use_username_as_clientid``
(a session belongs to the account that logs in: see nazorat.services.credentials), and
records its PID in ``pid_file`` so ``nazorat devices credentials`` can make it reload.

``AmqttBroker`` is the pure-Python fallback (amqtt, in-process, in a thread with its
own event loop): fine for a demo, not durable (no persistence, MQTT 3.1.1 only).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import string
import subprocess
import threading
from pathlib import Path
from typing import Protocol

from nazorat.services.net import free_port, wait_for_port

_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf.template"


class Broker(Protocol):
    host: str
    port: int

    def start(self) -> None: ...
    def stop(self) -> None: ...

    @property
    def url(self) -> str: ...


class MosquittoBroker:
    def __init__(self, data_dir: Path, *, port: int | None = None, host: str = "127.0.0.1",
                 password_file: Path | None = None, acl_file: Path | None = None,
                 pid_file: Path | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.port = port or free_port(host)
        self.password_file = password_file
        self.acl_file = acl_file
        self.pid_file = pid_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @staticmethod
    def available() -> bool:
        return shutil.which("mosquitto") is not None

    def render_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # the persistence file holds queued fixes, the log device ids
        auth: list[str] = []
        listener: list[str] = []
        if self.password_file is not None:
            auth.append(f"password_file {self.password_file.resolve()}")
            # a session belongs to the account: no login can use another's client id
            listener.append("use_username_as_clientid true")
        if self.acl_file is not None:
            auth.append(f"acl_file {self.acl_file.resolve()}")
        text = string.Template(_TEMPLATE.read_text()).substitute(
            port=self.port, host=self.host, data_dir=self.data_dir,
            allow_anonymous="false" if self.password_file else "true",
            auth_lines="\n".join(auth), listener_lines="\n".join(listener),
        )
        if os.geteuid() == 0:
            # stay root instead of dropping to the 'mosquitto' user, who could not write here
            text += "\nuser root\n"
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(text)
        return conf

    def start(self, timeout_s: float = 15.0) -> None:
        conf = self.render_config()
        exe = shutil.which("mosquitto")
        if exe is None:
            raise FileNotFoundError("mosquitto is not on PATH")
        self._proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(self.host, self.port, timeout_s)
        except TimeoutError:
            self.kill()
            raise
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self._proc.pid}\n")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _forget_pid(self) -> None:
        if self.pid_file is None or self._proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if int(self.pid_file.read_text().split()[0]) == self._proc.pid:
                self.pid_file.unlink()

    def reload(self) -> None:
        """Re-read the password and ACL files (SIGHUP)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Clean stop (SIGTERM): Mosquitto writes its persistence snapshot first."""
        if self._proc is None:
            return
        self._forget_pid()
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        if self._proc is None:
            return
        self._forget_pid()
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


class AmqttBroker:
    """amqtt running on its own event loop in a daemon thread."""

    def __init__(self, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: object | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        from amqtt.broker import Broker as _Amqtt

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 1000}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                broker = _Amqtt(config)
                await broker.start()
                self._broker = broker

            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(timeout_s)
        if errors:
            raise RuntimeError("amqtt broker failed to start") from errors[0]
        wait_for_port(self.host, self.port, timeout_s)

    def stop(self) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or broker is None:
            return

        async def down() -> None:
            await broker.shutdown()  # type: ignore[attr-defined]

        fut = asyncio.run_coroutine_threadsafe(down(), loop)
        try:
            fut.result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._broker = None


def start_broker(data_dir: Path, *, port: int | None = None) -> MosquittoBroker | AmqttBroker:
    """Mosquitto with the project config when the binary exists, else in-process amqtt."""
    broker: MosquittoBroker | AmqttBroker
    broker = MosquittoBroker(data_dir, port=port) if MosquittoBroker.available() else AmqttBroker(port=port)
    broker.start()
    return broker


__all__ = ["AmqttBroker", "Broker", "MosquittoBroker", "start_broker"]
