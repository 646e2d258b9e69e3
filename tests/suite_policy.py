"""Two rules of the suite, enforced while it runs (hooks re-exported by tests/conftest.py).

**Markers say what a test needs.** `postgres` (starts or uses a PostgreSQL server), `browser` (drives Chromium),
`subprocess` (starts another program: a server over stdio or `serve --http`, replicas, nginx, faketime, mount). So
`pytest -m "not postgres and not browser and not subprocess"` runs in seconds on a machine with nothing but Python.
The markers are checked, not trusted: an audit hook sees every program a test starts (`subprocess.Popen`,
`os.posix_spawn`, `os.fork`…) while it sets up and runs, and a test that starts one without the marker saying so
fails, as does a test that asks for a PostgreSQL fixture without `postgres`.

**A skip is a missing tool, and CI fails on it.** With `--fail-on-skip` (`.ci/run` passes it as root, where it has
installed every system package) or `CI` set, a run with any skipped test fails at the end, listing each with its
reason. Without either (a developer's machine without PostgreSQL, say), skips are reported as usual.

**The unit room does no I/O beyond files.** A test in a folder named `unit` (tests/unit/) that opens a socket (binds,
connects, looks a name up, sends a datagram) or starts a program fails, whatever its markers, naming what it did: it
belongs in tests/contract/ or tests/e2e/ (tests/README.md). So `pytest tests/unit` stays seconds and needs nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import PurePath
from typing import Any

import pytest

__all__ = [  # the hooks, which tests/conftest.py imports (pytest finds hooks by name in a conftest)
    "pytest_addoption",
    "pytest_collectreport",
    "pytest_configure",
    "pytest_runtest_call",
    "pytest_runtest_logreport",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
]

SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.posix_spawn", "os.spawn", "os.exec", "os.fork", "os.forkpty", "os.system", "pty.spawn"}
)
"""Audit events (PEP 578) raised when this process starts another program or forks."""
SOCKET_EVENTS = frozenset(
    {
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.sendto",
        "socket.sendmsg",
    }
)
"""Audit events raised when this process uses a socket: listening, connecting, resolving, sending a datagram. Not
`socket.socketpair` (no event): the event loop's own wake-up channel."""
UNIT_ROOM = "unit"

POSTGRES_FIXTURES = frozenset({"postgres_server", "own_postgres_server"})
POSTGRES_PROGRAMS = frozenset({"initdb", "pg_ctl", "postgres", "pg_config", "psql", "createdb"})
NOT_A_TOOL = frozenset({"uname"})
"""Programs a library starts on its own, found on any machine: `platform.processor()` runs `uname -p`."""
NEEDS = ("postgres", "browser", "subprocess")

_current: pytest.Item | None = None
_started: dict[str, list[str]] = {}
"""Per test (node id): the programs it started during setup and call."""
_opened: dict[str, list[str]] = {}
"""Per test (node id): the sockets it used during setup and call (`bind ('127.0.0.1', 0)`, `getaddrinfo localhost`)."""

_skipped: list[tuple[str, str]] = []


def _program(event: str, args: tuple[Any, ...]) -> str:
    """The program an audit event starts, as well as it can be told."""
    if event == "subprocess.Popen":  # (executable, args, cwd, env); executable is None unless given
        executable, argv = args[0], args[1]
        if executable is None:
            executable = argv if isinstance(argv, str | bytes | os.PathLike) else next(iter(argv), "?")
        return os.fsdecode(executable)
    if event in ("os.posix_spawn", "os.exec", "os.system"):  # (path, argv, env), (command,)
        return os.fsdecode(args[0])
    if event == "os.spawn":  # (mode, path, args, env)
        return os.fsdecode(args[1])
    return event  # os.fork, os.forkpty, pty.spawn


def _socket_use(event: str, args: tuple[Any, ...]) -> str:
    """`bind ('127.0.0.1', 0)`: the event without its prefix, and the address or name it names."""
    verb = event.removeprefix("socket.")
    # bind, connect, sendto: (socket, address); sendmsg: (socket, address); the look-ups: (host, …)
    where = args[1] if verb in ("bind", "connect", "sendto", "sendmsg") else args[0]
    return f"{verb} {where!r}"


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _current is None:
        return
    if event in SPAWN_EVENTS:
        try:
            _started.setdefault(_current.nodeid, []).append(_program(event, args))
        except Exception:  # an audit hook must never raise into the code it watches
            _started.setdefault(_current.nodeid, []).append(event)
    elif event in SOCKET_EVENTS:
        try:
            _opened.setdefault(_current.nodeid, []).append(_socket_use(event, args))
        except Exception:
            _opened.setdefault(_current.nodeid, []).append(event)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fail-on-skip",
        action="store_true",
        default=False,
        help="fail the run when any test is skipped (also when the CI environment variable is set)",
    )


def _strict(config: pytest.Config) -> bool:
    ci = os.environ.get("CI", "").strip().lower()
    return bool(config.getoption("--fail-on-skip")) or ci not in ("", "0", "false", "no")


def pytest_configure(config: pytest.Config) -> None:
    del config
    sys.addaudithook(_audit)


def _marked(item: pytest.Item) -> set[str]:
    return {mark.name for mark in item.iter_markers() if mark.name in NEEDS}


def _broken_rules(item: pytest.Item) -> list[str]:
    """What the test did that its markers do not say, or that its room forbids."""
    marked = _marked(item)
    problems: list[str] = []
    # The request's fixture names include those asked for with `request.getfixturevalue` (the journal contract's).
    requested = getattr(getattr(item, "_request", None), "fixturenames", None) or getattr(item, "fixturenames", ())
    fixtures = POSTGRES_FIXTURES.intersection(requested)
    if fixtures and "postgres" not in marked:
        problems.append(f"uses {', '.join(sorted(fixtures))} but is not marked `postgres`")
    started = [p for p in _started.get(item.nodeid, []) if PurePath(p).name not in NOT_A_TOOL]
    names = [PurePath(program).name for program in started]
    if any(name in POSTGRES_PROGRAMS for name in names) and "postgres" not in marked:
        problems.append("starts PostgreSQL programs but is not marked `postgres`")
    if any("playwright" in program for program in started) and "browser" not in marked:
        problems.append("starts Playwright's driver (a browser) but is not marked `browser`")
    if started and not marked:
        shown = ", ".join(sorted(set(names))[:6])
        problems.append(f"starts other programs ({shown}) but is marked none of {', '.join(NEEDS)}")
    if _in_unit_room(item):
        opened = sorted(set(_opened.get(item.nodeid, [])))
        if opened or started:
            did = [f"uses sockets ({', '.join(opened[:4])})"] if opened else []
            did += [f"starts programs ({', '.join(sorted(set(names))[:6])})"] if started else []
            problems.append(f"is in the unit room but {' and '.join(did)}: it belongs in tests/contract or tests/e2e")
    return problems


def _in_unit_room(item: pytest.Item) -> bool:
    try:
        folders = item.path.relative_to(item.config.rootpath).parts[:-1]
    except ValueError:  # a test file outside the root directory
        return False
    return UNIT_ROOM in folders


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None]:
    global _current
    _current = item
    try:
        return (yield)
    finally:
        _current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None]:
    global _current
    _current = item
    try:
        return (yield)
    finally:
        _current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if call.when == "call":  # after setup and the test itself: what they started, which fixtures they asked for
        problems = _broken_rules(item)
        _started.pop(item.nodeid, None)
        _opened.pop(item.nodeid, None)
        if problems and report.passed:
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid}: " + "; ".join(problems) + " (see tests/suite_policy.py)"
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append((report.nodeid, _reason(report.longrepr)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _skipped.append((report.nodeid, _reason(report.longrepr)))


def _reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")  # pyright: ignore[reportUnknownArgumentType]
    return str(longrepr)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _skipped and _strict(config):
        terminalreporter.section("skipped tests fail this run (CI is set, or --fail-on-skip)", red=True, bold=True)
        for nodeid, reason in _skipped:
            terminalreporter.write_line(f"SKIPPED {nodeid}: {reason}")
        terminalreporter.write_line(
            f"{len(_skipped)} skipped: each one is a tool this machine lacks (`.ci/run` installs them as root)."
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and _strict(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
