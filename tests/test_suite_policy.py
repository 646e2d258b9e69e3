"""The suite's own rules (tests/suite_policy.py), tried on small suites run by pytest in a process of their own:
a test that starts a program, or asks for PostgreSQL, without the marker saying so fails; a test in the unit room
that uses a socket or starts a program fails; in CI a skip fails the run and names the test and its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.subprocess  # each case is a pytest run of its own

ROOT = Path(__file__).resolve().parent.parent

CONFTEST = """
import pytest
from tests.suite_policy import *  # noqa: F403


@pytest.fixture(scope="session")
def postgres_server() -> str:  # a stand-in: what counts is that a test asks for it
    return "a server"
"""
INI = """
[pytest]
addopts = -p no:cacheprovider
markers =
    postgres: a PostgreSQL server
    browser: Chromium
    subprocess: another program
"""
STARTS = "import subprocess, sys\n\n\ndef start():\n    subprocess.run([sys.executable, '-c', 'pass'], check=True)\n"


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # `tests.suite_policy`, as the real conftest imports it
    monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    return pytester


def test_a_test_that_starts_a_program_without_a_marker_fails_and_says_which(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        STARTS
        + "import pytest\n\n\ndef test_unmarked():\n    start()\n\n\n"
        + "@pytest.mark.subprocess\ndef test_marked():\n    start()\n\n\n"
        + "def test_quiet():\n    pass\n"
    )
    result = suite.runpytest_subprocess()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_unmarked: starts other programs (python*) but is marked none of postgres*"])


def test_a_test_that_asks_for_postgresql_without_the_marker_fails(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        "import pytest\n\n\n"
        "def test_unmarked(postgres_server):\n    pass\n\n\n"
        "@pytest.mark.postgres\ndef test_marked(postgres_server):\n    pass\n\n\n"
        "def test_dynamic(request):\n    request.getfixturevalue('postgres_server')\n"
    )
    result = suite.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_unmarked: uses postgres_server but is not marked `postgres`*"])
    result.stdout.fnmatch_lines(["*test_dynamic: uses postgres_server but is not marked `postgres`*"])


UNIT_TESTS = (
    STARTS
    + "import socket\n\nimport pytest\n\n\n"
    + "def test_listens():\n    with socket.socket() as listener:\n        listener.bind(('127.0.0.1', 0))\n\n\n"
    + "def test_looks_up():\n    socket.getaddrinfo('localhost', 80)\n\n\n"
    + "@pytest.mark.subprocess\ndef test_starts_though_marked():\n    start()\n\n\n"
    + "async def test_awaits(anyio_backend):\n    pass\n\n\n"  # an event loop's own socketpair is no socket use
    + "def test_reads_a_file(tmp_path):\n    (tmp_path / 'x').write_text('x')\n"
)


def test_a_unit_test_that_uses_a_socket_or_starts_a_program_fails_and_says_where_it_belongs(
    suite: pytest.Pytester,
) -> None:
    suite.mkpydir("unit").joinpath("test_room.py").write_text(UNIT_TESTS)
    suite.makepyfile(test_elsewhere=UNIT_TESTS)  # the same tests outside the unit room: only the marker rule
    result = suite.runpytest_subprocess("-p", "anyio")
    result.assert_outcomes(passed=7, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*unit/test_room.py::test_listens: is in the unit room but uses sockets (bind ('127.0.0.1', 0)): "
            "it belongs in tests/contract or tests/e2e*",
            "*unit/test_room.py::test_looks_up: is in the unit room but uses sockets (getaddrinfo 'localhost')*",
            "*unit/test_room.py::test_starts_though_marked: is in the unit room but starts programs (python*",
        ],
        consecutive=False,
    )


SKIPS = (
    "import pytest\n\n\ndef test_runs():\n    pass\n\n\ndef test_needs_a_tool():\n    pytest.skip('no frobnicator')\n"
)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_with_ci_set_a_skipped_test_fails_the_run_and_is_named_with_its_reason(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    suite.makepyfile(SKIPS)
    monkeypatch.setenv("CI", ci)
    result = suite.runpytest_subprocess()
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*skipped tests fail this run*", "SKIPPED *::test_needs_a_tool: no frobnicator"])


def test_fail_on_skip_fails_the_run_without_ci(suite: pytest.Pytester) -> None:
    suite.makepyfile(SKIPS)
    result = suite.runpytest_subprocess("--fail-on-skip")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("ci", [None, "false", "0"])
def test_without_ci_a_skip_is_only_reported(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    suite.makepyfile(SKIPS)
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    result = suite.runpytest_subprocess()
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    assert "fail this run" not in result.stdout.str()
