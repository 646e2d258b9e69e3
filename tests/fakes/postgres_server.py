"""A throwaway PostgreSQL server for tests: the distribution's own binaries, a temporary directory, a unix socket.

`running_postgres()` runs `initdb` and `pg_ctl start` in a fresh directory under the system temp dir, listening on
a unix socket in that directory only (no TCP port, so nothing to collide with), and stops it and removes the
directory on exit. As root (CI) the server runs as the `postgres` system user, or `nobody` when there is none,
because `initdb` refuses to run as root. The `postgres_server` fixture shares one server across the session;
`fresh_database()` gives each test a database of its own on it.

The tests that need it are skipped only when no PostgreSQL server binaries exist at all (`.ci/run` installs the
`postgresql` package when `initdb` is missing).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

SUPERUSER = "postgres"
"""The database superuser `initdb` creates (`-U`); local connections are trusted, so it needs no password."""

_SETTINGS = """
listen_addresses = ''
unix_socket_directories = '{socket_dir}'
port = 5432
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
log_min_messages = warning
"""
"""Appended to postgresql.conf: socket only, and durability off (a test server's data may be lost on a crash)."""


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running server: where its socket is, how to reach one of its databases, and how to stop and start it."""

    socket_dir: Path
    port: int = 5432
    data_dir: Path | None = None
    bindir: Path | None = None

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for `database` over the unix socket (the form SEEDANCE_DATABASE_URL takes)."""
        return f"postgresql://{SUPERUSER}@/{database}?host={quote(str(self.socket_dir), safe='')}&port={self.port}"

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: every client connection is cut, new ones are refused (the socket file goes)."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        """`pg_ctl start`: the same data, the same socket; waits until it accepts connections."""
        self._pg_ctl("-l", str(self.socket_dir / "server.log"), "-w", "-t", "60", "start")

    def _pg_ctl(self, *args: str) -> None:
        assert self.bindir is not None and self.data_dir is not None, "not a server started by running_postgres"
        _run_as_server_user(self.socket_dir, str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), *args, timeout=90)


def find_bindir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`: `pg_config --bindir`, Debian's versioned dirs, or PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(d) for d in versioned), key=lambda d: _version_key(d.parent.name), reverse=True)
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, unless we are root (then `postgres`, else `nobody`)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def _run_as_server_user(root: Path, *args: str, timeout: float) -> None:
    """Run a server binary as the server's user (see `_server_user`), in `root`; its errors with the server log."""
    user = _server_user()
    log = root / "server.log"
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    if user is not None:
        env |= {"HOME": str(root), "USER": user.pw_name, "LOGNAME": user.pw_name}
    result = subprocess.run(
        args,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        user=None if user is None else user.pw_uid,
        group=None if user is None else user.pw_gid,
        extra_groups=None if user is None else [],
    )
    if result.returncode != 0:
        server_log = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}{server_log}")


@contextlib.contextmanager
def running_postgres(bindir: Path, settings: str = "") -> Generator[PostgresServer]:
    """Start a PostgreSQL server from `bindir` in a temporary directory; stop it and remove everything on exit.
    `settings`: more postgresql.conf lines (e.g. `shared_preload_libraries`)."""
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="seedance-pg-"))
    data = root / "data"
    log = root / "server.log"

    started = False
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
            if user.pw_name == "nobody":
                root.chmod(0o711)  # root's own client reaches the socket either way
        _run_as_server_user(
            root,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
            timeout=120,
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_SETTINGS.format(socket_dir=root) + settings)
        _run_as_server_user(
            root, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", timeout=90
        )
        started = True
        yield PostgresServer(socket_dir=root, data_dir=data, bindir=bindir)
    finally:
        try:
            if started and (data / "postmaster.pid").exists():  # a test may have stopped it
                _run_as_server_user(
                    root, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", timeout=60
                )
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session (skipped only when no server binaries exist)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) on this machine: "
            "install the `postgresql` package (apt-get install postgresql) to run the PostgreSQL store tests"
        )
    with running_postgres(bindir) as server:
        yield server


@pytest.fixture
def own_postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, which the test may stop and start again (an outage)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    with running_postgres(bindir) as server:
        yield server


async def fresh_database(server: PostgresServer) -> str:
    """Create an empty database on `server` and return its URL (each test gets its own)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    async with await psycopg.AsyncConnection.connect(server.url(), autocommit=True) as connection:
        await connection.execute(f"CREATE DATABASE {name} TEMPLATE template0".encode())
    return server.url(name)
