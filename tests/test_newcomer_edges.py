"""The rough edges a newcomer met in a fresh clone, each tried the way they met it: the demo's first ETA, `uvx`
paths in the client command, Ctrl-C on `serve --http`, and tokens files made with `>>`."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from seedance_mcp import demo
from seedance_mcp.demo import ProgressBar, client_argv, in_uv_cache_or_tool_dir, installed_from, uvx_argv
from seedance_mcp.principals import (
    PrincipalTokenVerifier,
    TokensFileError,
    add_principal,
    load_principals,
    parse_principals,
)
from tests.stdio_helpers import ROOT, server_env
from tests.test_http_transport import ANNOUNCEMENT, INITIALIZE, JSON_HEADERS, QUIET_PROVIDER, http_server

pytestmark = pytest.mark.anyio


# --- the demo's ETA ---------------------------------------------------------------------------------------------


def test_the_demo_shows_no_eta_until_the_job_renders() -> None:
    """What a real demo run was sent: two queued notifications creeping 0 → 0.4 % (the old bar extrapolated that
    into "ETA ~750 s" for a job done 5 s later), then the render. No ETA before there is a rate to go by."""
    timeline = [
        (0.0, 0.0, "queued · 0 s · cgt-1"),
        (3.0, 0.4, "queued · 3 s · cgt-1"),
        (4.0, 47.9, "running · 4 s · cgt-1"),
        (5.0, 55.4, "running · 5 s · cgt-1"),
        (6.0, 61.7, "running · 6 s · cgt-1"),
        (7.0, 67.2, "running · 7 s · cgt-1"),
        (8.0, 99.5, "downloading · 8 s · cgt-1"),
        (8.2, 100.0, "saved · 8 s · cgt-1"),
    ]
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out=out, clock=lambda: now[0])
    for at, percent, message in timeline:
        now[0] = at
        bar.show(percent, 100.0, message)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(timeline)
    assert not any("ETA" in line for line in lines[:3]), lines  # queued twice, then the render's first notice
    etas = [int(found[1]) for line in lines if (found := re.search(r"ETA ~(\d+) s", line))]
    assert etas and all(eta <= 10 for eta in etas), lines
    assert "ETA" not in lines[-1]


# --- the client command under uvx ---------------------------------------------------------------------------------


def _uv_cache_env(root: Path) -> Path:
    """An environment laid out as `uvx --from <clone>` leaves it: inside uv's cache, which is tagged as a cache."""
    cache = root / ".cache" / "uv"
    cache.mkdir(parents=True)
    (cache / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    prefix = cache / "archive-v0" / "k-MqCyvsEiN9CGU4"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "seedance-mcp").write_text("#!/bin/sh\n")
    (prefix / "bin" / "seedance-mcp").chmod(0o755)
    return prefix


def test_a_demo_run_from_uvs_cache_gives_clients_the_uvx_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `uvx --from <clone>` the seedance-mcp next to Python is in uv's cache (cleaned at will): the command
    given to clients is `uvx --from <clone> seedance-mcp`, with an absolute uvx when one is on the PATH."""
    prefix = _uv_cache_env(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uvx").write_text("#!/bin/sh\n")
    (bin_dir / "uvx").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    uvx = str(bin_dir / "uvx")
    python = prefix / "bin" / "python"
    from_clone: dict[str, Any] = {"url": "file:///home/ann/seedance-mcp", "dir_info": {}}

    assert in_uv_cache_or_tool_dir(prefix)
    assert client_argv(python, prefix, from_clone) == [uvx, "--from", "/home/ann/seedance-mcp", "seedance-mcp"]
    git = {"url": "https://github.com/ann/seedance-mcp", "vcs_info": {"vcs": "git", "commit_id": "0123abc"}}
    assert client_argv(python, prefix, git)[1:3] == ["--from", "git+https://github.com/ann/seedance-mcp@0123abc"]
    assert client_argv(python, prefix, {}) == [uvx, "seedance-mcp"]  # from the package index

    # The whole block the demo prints, from this process pretending to run there.
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setattr(demo, "installed_from", lambda: from_clone)
    lines = demo.client_lines()
    assert lines[0].endswith(f"use this command: {uvx} --from /home/ann/seedance-mcp seedance-mcp")
    snippet = json.loads("\n".join(lines[3:-1]))["mcpServers"]["seedance"]
    assert snippet["command"] == uvx and snippet["args"] == ["--from", "/home/ann/seedance-mcp", "seedance-mcp"]
    assert str(tmp_path / ".cache") not in "\n".join(lines)


def test_a_uv_tool_environment_also_gets_the_uvx_command(tmp_path: Path) -> None:
    prefix = tmp_path / "share" / "uv" / "tools" / "seedance-mcp"
    prefix.mkdir(parents=True)
    (prefix / "uv-receipt.toml").write_text('[tool]\nrequirements = [{ name = "seedance-mcp" }]\n')
    assert in_uv_cache_or_tool_dir(prefix)
    assert client_argv(prefix / "bin" / "python", prefix, {})[-1] == "seedance-mcp"


def test_a_venv_outside_any_cache_keeps_its_absolute_command(tmp_path: Path) -> None:
    venv = tmp_path / "clone" / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "seedance-mcp").write_text("#!/bin/sh\n")
    (venv / "bin" / "seedance-mcp").chmod(0o755)
    assert not in_uv_cache_or_tool_dir(venv)
    assert client_argv(venv / "bin" / "python", venv, {}) == [str(venv / "bin" / "seedance-mcp")]


def test_this_installation_says_where_it_came_from() -> None:
    """This checkout's editable install records its directory (PEP 610), which is what `--from` would name."""
    record = installed_from()
    assert record.get("dir_info") is not None, record
    assert uvx_argv(record)[-3:] == ["--from", str(ROOT), "seedance-mcp"]


# --- tokens files -------------------------------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seedance_mcp", *args],
        env=server_env(tmp_path, **variables),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.subprocess
async def test_the_token_command_adds_people_to_a_file_the_server_accepts(tmp_path: Path) -> None:
    """`token NAME --file FILE`: creates the file (0600), adds a second person, prints only the token; the server
    started on that file lets both in by their tokens."""
    tokens = tmp_path / "tokens.json"
    alice = cli(tmp_path, "token", "alice", "--file", "tokens.json")
    bob = cli(tmp_path, "token", "bob", "--file", "tokens.json")
    assert alice.returncode == 0 and bob.returncode == 0, alice.stderr + bob.stderr
    alice_token, bob_token = alice.stdout.strip(), bob.stdout.strip()
    assert re.fullmatch(r"smcp_[\w-]{40,}", alice_token) and alice.stdout.count("\n") == 1
    assert "added alice to tokens.json" in alice.stderr
    assert tokens.stat().st_mode & 0o777 == 0o600
    text = tokens.read_text()
    assert alice_token not in text and bob_token not in text
    assert sorted(load_principals(tokens)) == ["alice", "bob"]
    verifier = PrincipalTokenVerifier(load_principals(tokens))
    assert (await verifier.verify_token(bob_token)).client_id == "principal:bob"  # type: ignore[union-attr]

    async with (
        http_server(tmp_path, SEEDANCE_TOKENS_FILE=str(tokens), **QUIET_PROVIDER) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        answers = [
            await client.post("/mcp", json=INITIALIZE, headers={**JSON_HEADERS, "Authorization": f"Bearer {token}"})
            for token in (alice_token, bob_token, "smcp_not-a-token")
        ]
    assert [a.status_code for a in answers] == [200, 200, 401]


@pytest.mark.subprocess
def test_a_name_already_in_the_file_is_refused_and_the_file_left_as_it_was(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    assert cli(tmp_path, "token", "alice", "--file", str(tokens)).returncode == 0
    tokens.chmod(0o644)  # an operator's choice (a container reads it as another uid) is kept
    before = tokens.read_bytes()
    again = cli(tmp_path, "token", "alice", "--file", str(tokens))
    assert again.returncode == 2 and again.stdout == ""
    assert "'alice' is already there" in again.stderr and "line 2" in again.stderr
    assert tokens.read_bytes() == before
    assert cli(tmp_path, "token", "carol", "--file", str(tokens)).returncode == 0
    assert tokens.stat().st_mode & 0o777 == 0o644 and sorted(load_principals(tokens)) == ["alice", "carol"]


def test_a_write_that_fails_leaves_the_old_file_whole_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tmp_path / "tokens.json"
    add_principal(tokens, "alice", "smcp_alice-token-0123456789")
    before = tokens.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        add_principal(tokens, "bob", "smcp_bob-token-0123456789")
    assert tokens.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


def _appended_the_old_way(tmp_path: Path) -> Path:
    """`seedance-mcp token alice >> tokens.json` then the same for bob, as deploy/compose.yaml used to suggest."""
    tokens = tmp_path / "tokens.json"
    for name in ("alice", "bob"):
        made = cli(tmp_path, "token", name)
        assert made.returncode == 0
        with tokens.open("a") as out:
            out.write(made.stdout)
    return tokens


@pytest.mark.subprocess
def test_a_file_made_with_append_stops_the_server_with_one_line_naming_the_line(tmp_path: Path) -> None:
    """The server refused such a file with a 30-line traceback; now: exit 2 and one line that names the file's
    line 2 and the command that adds entries properly."""
    tokens = _appended_the_old_way(tmp_path)
    started = cli(tmp_path, "serve", "--http", "--port", "0", SEEDANCE_TOKENS_FILE=str(tokens), **QUIET_PROVIDER)
    assert started.returncode == 2
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in started.stderr, started.stderr
    assert lines[0].startswith(f"seedance-mcp: invalid configuration: SEEDANCE_TOKENS_FILE {tokens}, line 2:")
    assert "--file" in lines[0] and ">>" in lines[0]
    # The token command will not add to it either, and says why.
    more = cli(tmp_path, "token", "carol", "--file", str(tokens))
    assert more.returncode == 2 and "line 2" in more.stderr and "Traceback" not in more.stderr


@pytest.mark.parametrize(
    ("text", "line", "said"),
    [
        ('{\n  "alice": {"token_sha256": "' + "a" * 64 + '"},\n  "bob": {"token": "plain"}\n}', 3, "'bob' needs"),
        (
            '{\n  "alice": {"token_sha256": "' + "a" * 64 + '"},\n  "alice": {"token_sha256": "' + "b" * 64 + '"}\n}',
            3,
            "appears twice",
        ),
        ('{\n  "alice": {"token_sha256": "' + "a" * 64 + '", "daily_budget": -1}\n}', 2, "daily_budget must be"),
        ('{\n  "alice": {"token_sha256": "' + "a" * 64 + '",}\n}', 2, "not valid JSON"),
        ('{\n  "alice": {"token_sha256": "' + "a" * 64 + '", "budget": 3}\n}', 2, "unknown fields ['budget']"),
    ],
)
def test_each_mistake_in_a_tokens_file_names_its_line(text: str, line: int, said: str) -> None:
    with pytest.raises(TokensFileError) as caught:
        parse_principals(text, "SEEDANCE_TOKENS_FILE t.json")
    assert f"SEEDANCE_TOKENS_FILE t.json, line {line}" in str(caught.value) and said in str(caught.value)


@pytest.mark.subprocess
def test_a_missing_tokens_file_is_one_line_too(tmp_path: Path) -> None:
    started = cli(tmp_path, "serve", "--http", "--port", "0", SEEDANCE_TOKENS_FILE=str(tmp_path / "nope.json"))
    assert started.returncode == 2 and len(started.stderr.strip().splitlines()) == 1
    assert "nope.json: cannot read it" in started.stderr


# --- Ctrl-C on serve --http ---------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
@pytest.mark.subprocess
async def test_ctrl_c_stops_serve_http_quietly_with_exit_code_130(tmp_path: Path) -> None:
    """SIGINT with a client session open (what made uvicorn re-raise the signal into a traceback): the server
    shuts down, says so in one line and exits 130, as the stdio server does."""
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", "0"],
        env=server_env(tmp_path, SEEDANCE_LOG_LEVEL="WARNING", **QUIET_PROVIDER),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    err = bytearray()
    try:
        with anyio.fail_after(30):
            async for chunk in process.stderr:
                err.extend(chunk)
                if b"\n" in err.split(ANNOUNCEMENT.encode(), 1)[-1] and ANNOUNCEMENT.encode() in err:
                    break
            port = int(re.search(rb"http://127\.0\.0\.1:(\d+)/mcp", err)[1])  # type: ignore[index]
            async with httpx.AsyncClient(timeout=10) as client:
                opened = await client.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers=JSON_HEADERS)
                assert opened.status_code == 200 and opened.headers["mcp-session-id"]
                process.send_signal(signal.SIGINT)
                async for chunk in process.stderr:
                    err.extend(chunk)
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
    text = err.decode(errors="replace")
    assert process.returncode == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert text.rstrip().endswith("seedance-mcp: stopped.")
