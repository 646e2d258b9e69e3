# syntax=docker/dockerfile:1
# seedance-mcp as a container: `seedance-mcp serve --http` on 0.0.0.0:8765, with the PostgreSQL journal's driver.
#
#   docker build -t seedance-mcp .
#   docker run -p 8765:8765 -e SEEDANCE_API_KEY=… -e SEEDANCE_TOKENS_FILE=… seedance-mcp
#
# deploy/compose.yaml runs two replicas of it on PostgreSQL behind nginx (README.md, "Hosting for a team").
# Layers, cheapest to invalidate last: the dependencies' wheels are rebuilt only when pyproject.toml changes, the
# project's own wheel when the package source changes.

ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# 1. Every runtime dependency plus the `postgres` and `s3` extras (replicas on one database; local reference videos
#    through a bucket), as wheels (read from pyproject.toml, nothing else copied).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres'] + p['optional-dependencies']['s3']))" > requirements.txt \
    && pip wheel --wheel-dir /wheels/deps -r requirements.txt \
    && cp requirements.txt /wheels/deps/requirements.txt
# 2. The project's wheel (hatchling reads the version from the package, the description from README.md, and ships
#    LICENSE, which pyproject.toml names as its license file).
COPY README.md LICENSE ./
COPY server ./server
RUN pip wheel --no-deps --wheel-dir /wheels/app .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/seedance-mcp/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/data \
    SEEDANCE_OUTPUT_DIR=/data/videos \
    SEEDANCE_STATE_DIR=/data/state
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin seedance \
    && mkdir -p /data/videos /data/state \
    && chown -R seedance:seedance /data
# The wheels are mounted from the build stage, never copied: the final image holds only the venv.
RUN --mount=type=bind,from=build,source=/wheels/deps,target=/wheels/deps \
    python -m venv /opt/seedance-mcp \
    && pip install --no-cache-dir --no-index --find-links /wheels/deps -r /wheels/deps/requirements.txt
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels/deps "$(echo /wheels/app/seedance_mcp-*.whl)[postgres,s3]"

USER seedance
# HOME is the working directory, so the working directory is not a readable input dir (config.readable_dirs).
WORKDIR /data
VOLUME ["/data/videos", "/data/state"]
EXPOSE 8765
# /healthz: the process is up (no token needed). Checks port 8765: change it too if CMD's --port changes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["seedance-mcp"]
CMD ["serve", "--http", "--host", "0.0.0.0", "--port", "8765"]
