"""The container recipe and the compose example stay true to the code: no container runtime runs them here, so
each piece they start is checked against what the project does test (the CLI, the settings, nginx itself)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import httpx
import pytest
import yaml

from seedance_mcp.cli import _parser
from seedance_mcp.config import Settings, load_settings
from seedance_mcp.principals import token_hash
from tests.conftest import free_port_for_tests
from tests.fakes.stdio_helpers import server_env

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
REPLICAS = ("seedance-1", "seedance-2")

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.fakes.postgres_server"]  # the session's PostgreSQL server fixture, `postgres_server`


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        pending = ""
    return result


def instruction(keyword: str) -> str:
    """The arguments of the last `keyword` instruction (the one in force in the final image)."""
    found = [arguments for name, arguments in instructions() if name == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return found[-1]


def final_stage() -> list[tuple[str, str]]:
    every = instructions()
    last_from = max(i for i, (name, _) in enumerate(every) if name == "FROM")
    return every[last_from:]


def compose() -> dict[str, Any]:
    return cast("dict[str, Any]", yaml.safe_load(COMPOSE.read_text()))


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        pairs = (str(item).partition("=") for item in cast("list[Any]", environment))
        return {key: value for key, _, value in pairs}
    return {str(key): str(value) for key, value in cast("dict[Any, Any]", environment).items()}


def interpolated(value: str, required: str) -> str:
    """Compose's `${NAME:-default}` → default and `${NAME:?message}` → `required`, as an unset shell would."""

    def one(match: re.Match[str]) -> str:
        return match.group(3) if match.group(2) == "-" else required

    return re.sub(r"\$\{(\w+):?([-?])([^}]*)\}", one, value)


def upstream_servers() -> list[tuple[str, int]]:
    block = re.search(r"upstream\s+\w+\s*\{(.*?)\}", NGINX_CONF.read_text(), re.DOTALL)
    assert block is not None, "deploy/nginx.conf has no upstream block"
    return [(host, int(port)) for host, port in re.findall(r"^\s*server\s+([\w.-]+):(\d+)", block.group(1), re.M)]


def image_command() -> list[str]:
    return [*json.loads(instruction("ENTRYPOINT")), *json.loads(instruction("CMD"))]


def test_the_compose_file_sets_only_real_settings_with_values_they_accept(tmp_path: Path) -> None:
    """Every SEEDANCE_* variable compose gives a replica is a setting, and its value (defaults filled in) loads."""
    services = compose()["services"]
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"alice": {"token_sha256": token_hash("alice-token")}}))
    for name in REPLICAS:
        environment = service_environment(services[name])
        settings = {f"SEEDANCE_{field.upper()}" for field in Settings.model_fields} | {"SEEDANCE_API_KEY"}
        unknown = sorted(key for key in environment if key.startswith("SEEDANCE_") and key not in settings)
        assert not unknown, f"{name}: not settings: {unknown}"
        values = {key: interpolated(value, "0123456789abcdef" * 4) for key, value in environment.items()}
        values["SEEDANCE_TOKENS_FILE"] = str(tokens)
        loaded = load_settings(values)
        assert loaded.database_url is not None
        assert loaded.database_url.get_secret_value().startswith("postgresql://")
        assert str(loaded.output_dir) == "/data/videos"
        assert environment["SEEDANCE_HTTP_STATELESS"] == "true"
        for required in ("SEEDANCE_API_KEY", "SEEDANCE_REQUEST_STATE_KEYS"):
            assert ":?" in environment[required], f"{name}: {required} should be required (${{{required}:?…}})"


def test_the_replicas_share_postgres_and_a_videos_volume_once_postgres_is_healthy() -> None:
    """Both replicas wait for a healthy PostgreSQL 16 on a named volume, and mount one videos volume at the
    image's output directory."""
    document = compose()
    services = document["services"]
    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(v).split(":")[0] in document["volumes"] for v in postgres["volumes"])
    output_dir = re.search(r"SEEDANCE_OUTPUT_DIR=(\S+)", instruction("ENV"))
    assert output_dir is not None
    for name in REPLICAS:
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert f"videos:{output_dir.group(1)}" in service["volumes"]
        assert "@postgres:" in service_environment(service)["SEEDANCE_DATABASE_URL"]
        tokens_file = service_environment(service)["SEEDANCE_TOKENS_FILE"]
        assert tokens_file == f"/run/secrets/{service['secrets'][0]}"
    assert "videos" in document["volumes"]


def test_nginx_balances_over_the_compose_replicas_on_the_port_they_serve() -> None:
    """Every upstream server nginx names is a compose service, on the port the image's command listens on, and
    nginx's own port is the one compose publishes."""
    services = compose()["services"]
    arguments = _parser().parse_args(image_command()[1:])
    upstream = upstream_servers()
    assert sorted(host for host, _ in upstream) == sorted(REPLICAS)
    assert all(port == arguments.port for _, port in upstream)
    text = NGINX_CONF.read_text()
    listen = re.search(r"^\s*listen\s+(\d+)\s*;", text, re.M)
    assert listen is not None
    assert any(str(p).endswith(f":{listen.group(1)}") for p in services["nginx"]["ports"])
    assert "./nginx.conf:/etc/nginx/nginx.conf" in " ".join(services["nginx"]["volumes"])
    for directive in ("proxy_buffering off;", "proxy_http_version 1.1;", "proxy_set_header Host $http_host;"):
        assert directive in text, directive
    timeout = re.search(r"proxy_read_timeout\s+(\d+)([smh]?);", text)
    assert timeout is not None
    assert int(timeout.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[timeout.group(2)] >= 600


def test_the_image_runs_an_http_server_command_the_cli_accepts() -> None:
    """ENTRYPOINT is the console script and ENTRYPOINT + CMD parse as `serve --http` on every interface, on the
    EXPOSEd port."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    command = image_command()
    assert command[0] in project["scripts"]
    arguments = _parser().parse_args(command[1:])
    assert (arguments.command, arguments.http, arguments.host) == ("serve", True, "0.0.0.0")
    assert instruction("EXPOSE").split() == [str(arguments.port)]
    stage = final_stage()
    assert any(name == "USER" and arguments_ not in ("root", "0") for name, arguments_ in stage)
    assert str(instruction("FROM")).startswith("${PYTHON_IMAGE}")
    assert "ARG PYTHON_IMAGE=python:3.12-slim" in DOCKERFILE.read_text()


@pytest.mark.subprocess
def test_the_image_builds_its_requirements_from_pyproject_with_the_postgres_and_s3_extras() -> None:
    """The build step that lists the dependencies, run on this pyproject.toml, gives them and the postgres and s3
    extras (a team's server uploads local reference videos to its bucket)."""
    run = next(arguments for name, arguments in instructions() if name == "RUN" and "tomllib" in arguments)
    script = shlex.split(run.split(">", 1)[0])
    assert script[:2] == ["python", "-c"]
    listed = subprocess.run(
        [sys.executable, "-c", script[2]], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [*project["dependencies"], *extras["postgres"], *extras["s3"]]
    assert listed == [requirement.replace(" ", "") for requirement in wanted]
    assert any(r.startswith("psycopg") for r in listed) and any(r.startswith("boto3") for r in listed)
    installs = [arguments for name, arguments in final_stage() if name == "RUN" and "pip install" in arguments]
    assert any("[postgres,s3]" in arguments for arguments in installs)


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last matching pattern wins, `!` re-includes;
    a directory's pattern covers what is under it)."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.lstrip("!").strip("/")
        candidates = [bare] if not bare.startswith("**/") else [bare, bare[3:]]
        if any(
            fnmatch.fnmatchcase(prefix, candidate) or fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], candidate[3:])
            if candidate.startswith("**/")
            else fnmatch.fnmatchcase(prefix, candidate)
            for prefix in prefixes
            for candidate in candidates
        ):
            excluded = not negated
    return excluded


def test_the_build_context_holds_what_the_dockerfile_copies_and_not_caches_or_git() -> None:
    """Every COPY source from the context is sent; .git, .venv, caches, bench output and local secrets are not."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for name, arguments in instructions()
        if name == "COPY" and "--from" not in arguments
        for source in arguments.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not dockerignore_excludes(source, patterns), source
    assert not dockerignore_excludes("server/seedance_mcp/__init__.py", patterns)
    assert not dockerignore_excludes("server/seedance_mcp/ui/player.html", patterns)
    for kept_out in (
        ".git/HEAD",
        ".venv/bin/python",
        ".ruff_cache/x",
        ".pytest_cache/x",
        "server/seedance_mcp/__pycache__/cli.cpython-312.pyc",
        "bench/out/results.json",
        "tests/e2e/test_tools.py",
        "deploy/tokens.json",
        "deploy/.env",
    ):
        assert dockerignore_excludes(kept_out, patterns), kept_out


def test_the_image_healthcheck_asks_healthz_on_the_served_port() -> None:
    """HEALTHCHECK runs python (no curl in slim) against /healthz on loopback at the command's port."""
    healthcheck = instruction("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"]
    url = re.search(r"'(http://[^']+)'", command[2])
    assert url is not None
    port = _parser().parse_args(image_command()[1:]).port
    assert url.group(1) == f"http://127.0.0.1:{port}/healthz"


@pytest.mark.subprocess
@pytest.mark.postgres
async def test_the_image_command_with_a_replicas_settings_serves_and_passes_its_healthcheck(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """ENTRYPOINT + CMD (on a free port) with a compose replica's environment, on a real PostgreSQL journal and the
    sandbox, starts and answers the HEALTHCHECK command with exit 0."""
    from tests.fakes.postgres_server import fresh_database

    healthcheck = instruction("HEALTHCHECK")
    code = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])[2]
    port = free_port_for_tests()
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"alice": {"token_sha256": token_hash("alice-token-0123456789")}}))
    replica = {
        key: interpolated(value, "0123456789abcdef" * 4)
        for key, value in service_environment(compose()["services"][REPLICAS[0]]).items()
    }
    replica.update(
        SEEDANCE_PROVIDER="sandbox",
        SEEDANCE_TOKENS_FILE=str(tokens),
        SEEDANCE_DATABASE_URL=await fresh_database(postgres_server),
        SEEDANCE_OUTPUT_DIR=str(tmp_path / "videos"),
    )
    environment = server_env(tmp_path, **replica)
    command = image_command()
    command[command.index("--port") + 1] = str(port)
    log = (tmp_path / "server.log").open("wb")
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", *command[1:]], env=environment, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        with anyio.fail_after(20):
            while True:
                assert process.returncode is None, (tmp_path / "server.log").read_text()
                try:
                    async with httpx.AsyncClient() as probe:
                        await probe.get(f"http://127.0.0.1:{port}/mcp")
                    break
                except httpx.TransportError:
                    await anyio.sleep(0.1)
        with anyio.fail_after(15):
            check = await anyio.run_process(
                [sys.executable, "-c", code.replace(":8765/", f":{port}/")], check=False, env=environment
            )
        assert check.returncode == 0, check.stderr.decode()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/nowhere")).status_code != 200
    finally:
        log.close()
        if process.returncode is None:
            process.terminate()
            with anyio.move_on_after(5):
                await process.wait()


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
@pytest.mark.subprocess
def test_nginx_accepts_the_config_with_the_replicas_on_loopback(tmp_path: Path) -> None:
    """`nginx -t` passes on deploy/nginx.conf with its upstream host names replaced by 127.0.0.1."""
    text = NGINX_CONF.read_text()
    for host, port in upstream_servers():
        text = text.replace(f"{host}:{port}", f"127.0.0.1:{port}")
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    nginx = shutil.which("nginx")
    assert nginx is not None
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
