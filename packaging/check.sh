#!/usr/bin/env bash
# The release artefacts, built and tried as a user gets them (run by .ci/run; alone: `bash packaging/check.sh`):
#
#  1. PyPI: `python -m build` (the sdist, then the wheel built from the sdist, which proves the sdist complete),
#     `twine check --strict`; the wheel installed into a fresh venv runs `seedance-mcp --help` and `--version`
#     from outside the checkout, and ships the player, the sandbox's media, the migrations, py.typed and LICENSE.
#  2. Claude Desktop extension: packaging/build_mcpb.py lays out the bundle (run by that fresh venv's Python, so
#     the manifest's providers and tools are the wheel's own), the official CLI (@anthropic-ai/mcpb, pinned)
#     validates and packs it, and packaging/host_emulator.py installs the .mcpb as a host does (the reference
#     library resolves its mcp_config, uv installs its dependencies) and makes a video on the sandbox through it.
#
# The wheel, the sdist and the .mcpb are left in $SEEDANCE_DIST_DIR (default dist/). Needs python3, node/npm and
# network access to PyPI and npm (build, twine, uv and the CLI are installed into a scratch directory).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON="${PYTHON:-python3}"
MCPB_CLI_VERSION=2.1.2
DIST="${SEEDANCE_DIST_DIR:-$ROOT/dist}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if command -v ruff >/dev/null 2>&1 && command -v pyright >/dev/null 2>&1; then
    echo "== packaging: ruff and pyright on packaging/"
    ruff format --check packaging
    ruff check packaging
    pyright --pythonpath "$(command -v python)" packaging
fi

echo "== packaging: build the sdist and the wheel"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install --quiet build twine uv 2>&1 | grep -v "^WARNING: Location" || true
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
"$WORK/tools/bin/twine" check --strict "$WORK"/dist/*
wheel=$(ls "$WORK"/dist/*.whl)
version=$(basename "$wheel" | cut -d- -f2)

echo "== packaging: the wheel in a fresh venv, run from outside the checkout"
"$PYTHON" -m venv "$WORK/fresh"
"$WORK/fresh/bin/pip" install --quiet "$wheel" 2>&1 | grep -v "^WARNING: Location" || true
(
    cd "$WORK"
    "$WORK/fresh/bin/seedance-mcp" --help >"$WORK/help.txt"
    grep -q "serve" "$WORK/help.txt" || { cat "$WORK/help.txt"; exit 1; }
    test "$("$WORK/fresh/bin/seedance-mcp" --version)" = "seedance-mcp $version"
    "$WORK/fresh/bin/python" - "$ROOT" <<'PY'
import sys
from importlib import metadata, resources
from pathlib import Path

import seedance_mcp

root = Path(sys.argv[1]).resolve()
where = Path(seedance_mcp.__file__).resolve()
assert root not in where.parents, f"imported from the checkout: {where}"
dist = metadata.distribution("seedance-mcp")
assert dist.entry_points.select(group="console_scripts", name="seedance-mcp"), "no console script"
files = {str(f) for f in dist.files or ()}
assert any(f.endswith("licenses/LICENSE") for f in files), "LICENSE not in the wheel"
for part in ("py.typed", "ui/player.html", "sandbox/assets/sample.mp4", "data/catalog.toml"):
    assert resources.files("seedance_mcp").joinpath(part).is_file(), part
for journal in ("sqlite", "postgres"):
    migrations = resources.files("seedance_mcp").joinpath("journal", "migrations", journal)
    assert any(m.name.endswith(".sql") for m in migrations.iterdir()), f"no {journal} migrations"
meta = dist.metadata
urls = meta.get_all("Project-URL") or []
assert meta["License-Expression"] == "MIT" and urls, (meta["License-Expression"], urls)
print(f"wheel OK: seedance-mcp {dist.version} from {where.parent}; {len(urls)} project URLs")
PY
)

echo "== packaging: the Claude Desktop extension (.mcpb), checked by @anthropic-ai/mcpb@$MCPB_CLI_VERSION"
node --version
npm install --silent --no-save --no-audit --no-fund --prefix "$WORK/npm" "@anthropic-ai/mcpb@$MCPB_CLI_VERSION" >/dev/null
mcpb="$WORK/npm/node_modules/.bin/mcpb"
"$WORK/fresh/bin/python" packaging/build_mcpb.py --wheel "$wheel" --out "$WORK/bundle"
"$mcpb" validate "$WORK/bundle"
"$mcpb" pack "$WORK/bundle" "$WORK/dist/seedance-mcp-$version.mcpb" </dev/null

echo "== packaging: the .mcpb installed and used as a host does (uv installs its dependencies)"
PATH="$WORK/tools/bin:$PATH" "$WORK/fresh/bin/python" packaging/host_emulator.py \
    --mcpb-lib "$WORK/npm" "$WORK/dist/seedance-mcp-$version.mcpb"

mkdir -p "$DIST"
cp "$WORK"/dist/*.whl "$WORK"/dist/*.tar.gz "$WORK"/dist/*.mcpb "$DIST"/
echo "== packaging: OK ($(cd "$DIST" && ls | tr '\n' ' '))"
