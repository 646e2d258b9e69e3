"""What ships: the Claude Desktop extension's manifest and launcher, and the PyPI metadata.

The heavy checks (building the sdist, wheel and .mcpb, the official `mcpb` CLI, uv installing the bundle as a host
does) are `bash packaging/check.sh`, run by `.ci/run`; these are the fast ones: the manifest agrees with the
server's own settings and tools, the bundle's launcher survives a host's unsubstituted placeholders, and the
metadata and README links work on pypi.org.
"""

from __future__ import annotations

import importlib.util
import re
import struct
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import anyio
import pytest
from mcp import Client, StdioServerParameters

from seedance_mcp import __version__
from seedance_mcp.config import ProviderName, Settings, load_settings
from tests.stdio_helpers import ROOT, server_env

pytestmark = pytest.mark.anyio

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
README = (ROOT / "README.md").read_text()


def _build_mcpb() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_mcpb", ROOT / "packaging" / "build_mcpb.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The bundle laid out by packaging/build_mcpb.py around a stand-in wheel file (its bytes are not read here)."""
    root = tmp_path_factory.mktemp("mcpb")
    wheel = root / f"seedance_mcp-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    out = root / "bundle"
    manifest = _build_mcpb().build(out, wheel)
    return out, manifest


def test_the_manifest_is_a_uv_bundle_of_this_version_with_a_launch_command(bundle: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = bundle
    assert manifest["manifest_version"] == "0.4" and manifest["version"] == __version__
    server = manifest["server"]
    assert server["type"] == "uv" and (out / server["entry_point"]).is_file()
    config = server["mcp_config"]  # required by the CLI 2.1.2 for every server type
    assert config["command"] == "uv" and config["args"][-1] == "${__dirname}/" + server["entry_point"]
    project = tomllib.loads((out / "pyproject.toml").read_text())
    assert project["project"]["dependencies"] == [f"seedance-mcp=={__version__}"]
    source = project["tool"]["uv"]["sources"]["seedance-mcp"]["path"]
    assert (out / source).is_file()
    assert manifest == __import__("json").loads((out / "manifest.json").read_text())


def test_the_settings_the_user_types_are_the_servers_own(bundle: tuple[Path, dict[str, Any]]) -> None:
    """The provider (a string: MCPB has no enum) lists exactly the providers the server accepts; the key is
    sensitive; each setting reaches the server as the variable it reads."""
    _, manifest = bundle
    settings = manifest["user_config"]
    provider = settings["provider"]
    assert provider["type"] == "string" and provider["default"] == "ark" and provider["required"] is True
    listed = re.findall(r"[a-z][a-z-]+", provider["description"].split(":", 1)[1].split(".", 1)[0])
    assert listed == list(get_args(ProviderName))
    assert settings["api_key"]["sensitive"] is True and settings["api_key"]["required"] is False
    assert settings["output_dir"]["type"] == "directory" and "default" not in settings["output_dir"]
    env = manifest["server"]["mcp_config"]["env"]
    assert {value for value in env.values()} == {f"${{user_config.{key}}}" for key in settings}
    samples = {"provider": "byteplus", "api_key": "k-0123456789", "output_dir": "/tmp/v", "model": "2.0"}
    samples["base_url"] = "https://gw.example.com/v1"
    environment = {variable: samples[value[len("${user_config.") : -1]] for variable, value in env.items()}
    loaded = load_settings(environment)
    assert (loaded.provider, loaded.key, str(loaded.output_dir), loaded.model, loaded.base_url) == (
        "byteplus",
        "k-0123456789",
        "/tmp/v",
        "2.0",
        "https://gw.example.com/v1",
    )


async def test_the_manifest_lists_the_tools_the_server_has(bundle: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    from seedance_mcp.app import create_app

    _, manifest = bundle
    async with Client(create_app(Settings(provider="sandbox", state_dir=tmp_path))) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
    assert [tool["name"] for tool in manifest["tools"]] == names
    assert all(tool["description"] and len(tool["description"]) <= 160 for tool in manifest["tools"])


def test_the_icon_is_a_512_pixel_png(bundle: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = bundle
    data = (out / manifest["icon"]).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (512, 512)


@pytest.mark.subprocess
async def test_the_launcher_treats_a_hosts_unsubstituted_placeholders_as_unset(
    bundle: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The MCPB reference library passes an optional setting the user left empty on as `${user_config.model}`; the
    server would refuse that model and exit. Through the bundle's launcher it starts on the defaults."""
    out, _ = bundle
    env = server_env(
        tmp_path,
        SEEDANCE_PROVIDER="sandbox",
        SEEDANCE_API_KEY="${user_config.api_key}",
        SEEDANCE_MODEL="${user_config.model}",
        SEEDANCE_BASE_URL="${user_config.base_url}",
        SEEDANCE_OUTPUT_DIR=str(tmp_path / "videos"),
    )
    params = StdioServerParameters(command=sys.executable, args=[str(out / "server" / "main.py")], env=env)
    with anyio.fail_after(30):
        async with Client(params) as client:
            models = await client.call_tool("list_models", {})
    data = models.structured_content or {}
    assert not models.is_error and data["provider"] == "sandbox"
    assert data["default_model"].startswith("doubao-seedance") and "${" not in str(data)


def test_pypi_metadata_names_the_license_file_urls_and_classifiers() -> None:
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])  # the expression supersedes them
    assert "Typing :: Typed" in PROJECT["classifiers"]
    assert (ROOT / "server" / "seedance_mcp" / "py.typed").is_file()
    assert {"Homepage", "Source", "Issues"} <= set(PROJECT["urls"])


def test_readme_links_are_absolute_and_point_at_files_that_exist() -> None:
    """pypi.org shows README.md without the repository around it: a relative link (or a bare #anchor) is dead there.
    Links into the repository use the project's Source URL, and name files that exist."""
    base = PROJECT["urls"]["Source"].rstrip("/")
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "http://"))]
    assert relative == [], relative
    for target in targets:
        if target.startswith(f"{base}/blob/main/"):
            path = target.removeprefix(f"{base}/blob/main/").split("#", 1)[0]
            assert (ROOT / path).exists(), target
        elif target.startswith(f"{base}#"):
            anchor = target.split("#", 1)[1]
            headings = {
                re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", README, re.M)
            }
            assert anchor in headings, target


def test_the_image_build_has_every_file_the_wheel_build_reads() -> None:
    """hatchling refuses to build without the license file pyproject names: the Dockerfile must copy it and
    .dockerignore let it through."""
    from tests.test_deploy_files import dockerignore_excludes, instructions

    copied = {
        source
        for name, arguments in instructions()
        if name == "COPY" and "--from" not in arguments
        for source in arguments.split()[:-1]
    }
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in [PROJECT["readme"], *PROJECT["license-files"]]:
        assert needed in copied and not dockerignore_excludes(needed, patterns), needed


def test_the_readme_shows_both_install_routes() -> None:
    install = README[README.index("## Install") : README.index("## Two commands")]
    assert ".mcpb" in install and "Claude Desktop" in install
    assert "`uvx seedance-mcp`" in install and "uvx --from /abs/path/to/clone seedance-mcp" in install
