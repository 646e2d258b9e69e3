"""Settings: every knob of the server, typed, with defaults. Read from the environment only by `load_settings`,
which only the entry point calls; tests and embedders build `Settings(...)` directly.

The environment is read with a plain loop over the model's fields rather than pydantic-settings: the variables
are flat and prefixed, pydantic validates and coerces them the same way, and the import of pydantic-settings
alone cost about a fifth of the cold-start budget (bench #1)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from seedance_mcp.catalog import Catalog, Preset, Region, builtin_catalog
from seedance_mcp.errors import Whole
from seedance_mcp.network import Network

ProviderName = Literal[
    "ark", "byteplus", "kkiai", "gptge", "yescale", "openai-compatible", "new-api", "aiid", "sandbox"
]


def default_output_dir() -> Path:
    home = Path.home()
    return home / ("Movies" if sys.platform == "darwin" else "Videos") / "seedance-mcp"


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The platform's place for an application's state; XDG_STATE_HOME (LOCALAPPDATA on Windows) is read from
    `environ`, which `load_settings` passes: only the entry point reads the environment."""
    env = environ or {}
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "seedance-mcp"
    if sys.platform == "win32":
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local") / "seedance-mcp"
    return Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "seedance-mcp"


class Settings(BaseModel):
    """The server's configuration. Built from keyword arguments; `load_settings` reads it from the environment."""

    model_config = ConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)

    provider: ProviderName = "ark"
    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str | None = None
    """Default model id or key; the preset's default when unset."""
    output_dir: Path = Field(default_factory=default_output_dir)
    state_dir: Path = Field(default_factory=default_state_dir)
    poll_interval: float = Field(default=3.0, gt=0, le=600)
    """Seconds between status polls at the start of a render; later polls space out with the elapsed time."""
    poll_interval_max: float = Field(default=30.0, gt=0)
    wait_seconds: float = Field(default=50.0, ge=0, le=3600)
    """How long one tool call may block before it hands back a task handle."""
    allowed_dirs: tuple[Path, ...] = ()
    """Directories local input files may come from; empty means the inputs directory, the output directory and the
    working directory unless that is a filesystem root, the home directory or above it (see `readable_dirs`)."""
    http_token: SecretStr | None = None
    reconcile_delays: tuple[float, ...] = (2.0, 10.0, 30.0)
    """After a create answer is lost: when to look for the task in the provider's list (Ark dialects)."""
    reconcile_window: float | None = Field(default=None, ge=0)
    """Seconds after a lost create within which its task may still appear; an empty look proves nothing earlier.
    Default: the HTTP time-out plus 30 s."""
    reconcile_patience: float = Field(default=1800.0, ge=0)
    """How long to keep looking for a lost create's task while looks fail or stay inconclusive."""
    safety_identifier: str | None = Field(default=None, max_length=64)
    """Sent as Ark's `safety_identifier` (an end-user id) on every create. Unset: each job sends a marker of its own
    there, which is how a task whose create answer was lost is recognised for certain."""
    lease_seconds: float = Field(default=30.0, gt=0)
    """How long a server process's hold on a job lasts without renewal: the take-over delay after a crash."""
    dedupe_window: float = Field(default=600.0, ge=0)
    """Seconds during which an identical generate_video call returns the earlier job instead of paying again."""
    http_timeout: float = Field(default=60.0, gt=0)
    """Seconds one provider request may take in all, from connecting to the answer's last byte; a create cut off
    by it is never re-sent (its task may exist, and is looked for)."""
    max_download_mb: int = Field(default=2048, gt=0)
    download_timeout: float = Field(default=600.0, gt=0)
    sandbox_render_seconds: float = Field(default=6.0, ge=0)
    """Sandbox only: how long a task spends queued and running before it succeeds."""
    sandbox_port: int = Field(default=0, ge=0, le=65535)
    sandbox_as: ProviderName | None = None
    """Sandbox only: which provider's dialect, paths and model list the sandbox speaks (default: Ark)."""
    startup_delay: float = Field(default=1.0, ge=0)
    """Seconds after start-up before the journal is opened and unfinished jobs resume (sooner on a tool call)."""
    retry_scale: float = Field(default=1.0, ge=0)
    """Multiplies every retry back-off (tests set it near zero)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    public_hosts: tuple[str, ...] = ()
    """`serve --http`: the `host[:port]` names remote clients reach the server under (comma-separated); their Host
    and Origin headers are accepted besides loopback's."""
    public_url: str | None = None
    """`serve --http`: the URL clients use (`https://video.example.com`); announced at start-up, named in the OAuth
    protected-resource metadata (`<url>/mcp`), and its host is a public host."""
    cors_origins: tuple[str, ...] = ()
    """`serve --http`: the origins (`https://app.example.com`, comma-separated) of browser pages allowed to call
    `/mcp` from another origin: answered with CORS headers, and accepted by the Origin check."""
    player_media_origins: tuple[str, ...] = ()
    """Origins (`https://cdn.example.com`, `https://*.example.com`) the MCP App player may load videos and images
    from, declared to hosts in its CSP besides the provider's own (needed for gateways, whose media hosts vary)."""
    max_cost_per_video: float | None = Field(default=None, ge=0)
    """Refuse a video whose estimated cost (in the provider's currency) is above this."""
    daily_budget: float | None = Field(default=None, ge=0)
    """The whole server's daily budget: refuse a video that would take today's spend of everyone together (billed,
    plus jobs in flight at their estimate) above this. On stdio there is one person, so it is theirs."""
    daily_budget_per_person: float | None = Field(default=None, ge=0)
    """Each person's daily budget (`serve --http` with SEEDANCE_TOKENS_FILE): refuse a video that would take that
    person's own spend today above this. A person's `daily_budget` in the tokens file overrides it."""
    confirm_above: float | None = Field(default=None, ge=0)
    """Ask the person (elicitation) before a video that costs more than this, whatever the call's arguments say;
    clients that cannot ask get a refusal naming the cost with an approval id for exactly that video, which the
    model passes back (`approval_id`) once the person agrees."""
    require_confirmation: bool = False
    """Mark generate_video as needing the user's interaction in hosts that honour it (Claude Code)."""
    tokens_file: Path | None = None
    """`serve --http`: a JSON file of principals, each with the SHA-256 of its bearer token and its own limits
    (`seedance-mcp token NAME` makes one); each principal sees and spends only on its own jobs."""
    http_stateless: bool = False
    """`serve --http`: no sessions, so any request may land on any replica behind a load balancer."""
    request_state_keys: tuple[SecretStr, ...] = ()
    """`serve --http`: the shared secret(s) (≥ 32 bytes, comma-separated; the first seals) for the state the
    2026-07-28 protocol hands back and forth, so every replica reads what another sealed."""
    metrics_address: str | None = None
    """`serve --http`: `host:port` of a listener of its own that serves only `/metrics`, without a token (for a
    scraper on a private network); `/metrics` on the MCP port always wants a bearer token /mcp accepts."""
    database_url: SecretStr | None = None
    """`postgresql://…`: keep the journal in PostgreSQL, shared by every replica (default: SQLite in state_dir)."""
    model_map: dict[str, str] = Field(default_factory=dict[str, str])
    """Model ids and Ark endpoints the catalog does not know, each declared as a catalog model:
    `ep-20251103-abcde=2.0,doubao-seedance-2-5-261001=2.5`."""
    prices: dict[str, Any] | None = None
    """Price overrides (JSON, or the path of a JSON file): `{"cn": {"2.0": {"per_million": 46}}}`; merged into the
    catalog like a SEEDANCE_CATALOG_FILE's prices."""
    catalog_file: Path | None = None
    """A TOML file of catalog entries (models, limits, lifecycles, prices, presets) merged into the built-in catalog
    at start-up, checked there (an error names the line): models change monthly, a release need not."""
    region: Region | None = None
    """Which region of its cloud an official Ark preset talks to: `byteplus` in `ap-southeast-1` (default) or
    `eu-west-1`; `ark` in `cn-beijing`. Keys and model activation are per region."""
    catalog: Catalog = Field(default_factory=builtin_catalog, exclude=True, repr=False)
    """The catalog every tool reads: the built-in one, merged with `catalog_file` and `prices` (never from the
    environment itself)."""
    network: Network = Field(default_factory=Network, exclude=True, repr=False)
    """Proxies and CAs (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY, SSL_CERT_FILE, SSL_CERT_DIR, as httpx and curl read
    them): `load_settings` reads them from the environment; given as a mapping of those variables, it is checked
    the same way. Every client the server opens uses exactly this (none reads the environment itself)."""
    inputs_dir: Path = Field(default_factory=lambda data: _default_inputs_dir(data))
    """Where users put files for generate_video to read (default `<output_dir>/inputs`; created on first use)."""
    upload_url: str | None = None
    """`s3://bucket/prefix`: where local reference videos and audios (and large images) are uploaded, once per
    content hash, for the provider to fetch through presigned GET links that expire (never public objects)."""
    upload_endpoint: str | None = None
    """The S3-compatible endpoint (`https://tos-s3-cn-beijing.volces.com`, R2, MinIO); default AWS S3's."""
    upload_region: str | None = None
    """The bucket's region (else AWS_REGION, AWS_DEFAULT_REGION or the profile's)."""
    upload_addressing: Literal["auto", "path", "virtual"] = "auto"
    """Bucket in the host name (`virtual`) or the path (`path`); `auto`: path for http:// or IP endpoints."""
    upload_profile: str | None = None
    """The AWS profile for the upload credentials (else AWS_PROFILE); explicit keys win over it."""
    upload_access_key_id: SecretStr | None = None
    """Else AWS_ACCESS_KEY_ID; without keys or a profile, boto3's own chain (files, SSO, roles) decides."""
    upload_secret_access_key: SecretStr | None = None
    upload_session_token: SecretStr | None = None
    upload_ca_bundle: Path | None = None
    """The CA bundle for the upload endpoint (else AWS_CA_BUNDLE, then SSL_CERT_FILE)."""
    upload_link_hours: float = Field(default=3.0, gt=0, le=168)
    """How long a link to an uploaded file works (a presigned GET, or the hosted server's own signed link)."""
    hosted_uploads: bool = Field(default=False, exclude=True)
    """Set by `serve --http` with SEEDANCE_PUBLIC_URL (never from the environment): without an upload bucket, the
    server serves uploaded files itself, at its public URL, through signed links that expire."""

    @field_validator("allowed_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.split(os.pathsep) if part.strip())
        return value

    @field_validator("upload_url", mode="before")
    @classmethod
    def _check_upload_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            upload_target(value)  # raises ValueError saying what is expected
            return value.strip()
        return value

    @field_validator("reconcile_delays", mode="before")
    @classmethod
    def _split_delays(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.split(",") if part.strip())
        return value

    @field_validator("public_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            return tuple(_host_entry(str(part)) for part in value if str(part).strip())  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        return value

    @field_validator("cors_origins", "player_media_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            wildcard = info.field_name == "player_media_origins"
            entries = (str(part) for part in value if str(part).strip())  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            return tuple(dict.fromkeys(_origin(entry, wildcard=wildcard) for entry in entries))
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _check_public_url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        from urllib.parse import urlsplit

        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.netloc
            or "@" in parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ValueError(f"expected an http(s) URL like https://video.example.com: {value!r}")
        _host_entry(parts.netloc)
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"

    @field_validator("metrics_address", mode="before")
    @classmethod
    def _check_metrics_address(cls, value: Any) -> Any:
        if isinstance(value, str):
            entry = _host_entry(value)
            if ":" not in entry.rsplit("]", 1)[-1]:
                raise ValueError(f"expected host:port, e.g. 127.0.0.1:9464: {value!r}")
            return entry
        return value

    @field_validator("request_state_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            keys = tuple(part.strip() for part in value.split(",") if part.strip())
            if any(len(key.encode()) < 32 for key in keys):
                raise ValueError("each request-state key must be at least 32 bytes of secret randomness")
            return keys
        return value

    @model_validator(mode="before")
    @classmethod
    def _read_network(cls, data: Any) -> Any:
        """`network` given as the proxy and certificate variables: checked, each error naming its variable."""
        if not isinstance(data, dict):
            return data
        values = cast("dict[str, Any]", data)
        network = values.get("network")
        if isinstance(network, Mapping):
            values = {**values, "network": Network.from_environment(cast("Mapping[str, str]", network))}
        return values

    @model_validator(mode="before")
    @classmethod
    def _build_catalog(cls, data: Any) -> Any:
        """The merged catalog, built once from SEEDANCE_CATALOG_FILE and SEEDANCE_PRICES (read here, at the edge),
        then the declared model ids and the region checked against it."""
        if not isinstance(data, dict):
            return data
        values: dict[str, Any] = dict(cast("dict[str, Any]", data))
        prices = values.get("prices")
        if isinstance(prices, str):
            import json

            text = prices.strip()
            try:
                if not text.startswith("{"):
                    text = Path(text).expanduser().read_text()
                values["prices"] = prices = json.loads(text)
            except (OSError, ValueError) as exc:
                raise ValueError(f"SEEDANCE_PRICES: neither JSON nor a readable JSON file ({exc})") from None
        catalog = values.get("catalog")
        if not isinstance(catalog, Catalog):
            file = values.get("catalog_file")
            if file or prices:
                from seedance_mcp.catalog_loader import load_catalog

                catalog = load_catalog(Path(file) if file else None, prices)
            else:
                catalog = builtin_catalog()
            values["catalog"] = catalog
        model_map = values.get("model_map")
        if model_map:
            from seedance_mcp.model_map import checked_model_map, parse_model_map

            if isinstance(model_map, str):
                values["model_map"] = parse_model_map(model_map, catalog)
            elif isinstance(model_map, dict):
                values["model_map"] = checked_model_map(cast("dict[str, str]", model_map), catalog)
        region = values.get("region")
        if isinstance(region, str) and region.strip():
            values["region"] = _region_key(catalog, region, values.get("provider"), values.get("sandbox_as"))
        return values

    @model_validator(mode="after")
    def _known_model(self) -> Settings:
        if self.model is None:
            return self
        if self.catalog.find(self.model) is None and self.model.strip().lower() not in self.model_map:
            raise ValueError(
                f"SEEDANCE_MODEL: unknown Seedance model {self.model!r}; known: {', '.join(self.catalog.models)}; "
                "add it in SEEDANCE_CATALOG_FILE, or declare an endpoint or newer id in SEEDANCE_MODEL_MAP "
                "(e.g. ep-2025…=2.0)"
            )
        return self

    @property
    def preset_name(self) -> str:
        """The preset whose rules apply (the sandbox speaking another provider's dialect takes that one's)."""
        if self.provider == "sandbox" and self.sandbox_as not in (None, "sandbox"):
            return self.sandbox_as
        return self.provider

    @property
    def preset(self) -> Preset:
        """The preset whose rules apply, in the region chosen (SEEDANCE_REGION), from the merged catalog."""
        return self.catalog.preset(self.preset_name, self.region)

    @property
    def default_model(self) -> str:
        return self.model or self.preset.default_model

    @property
    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None

    def secrets(self) -> list[str]:
        """What never appears in a log line or an error: the API key, the HTTP token, the request-state keys and
        the database's password (only the password: the rest of its URL is words unrelated lines hold)."""
        found = [self.key, self.http_token.get_secret_value() if self.http_token else None]
        found += [key.get_secret_value() for key in self.request_state_keys]
        found += self.network.secrets()
        if self.database_url is not None:
            found += database_url_secrets(self.database_url.get_secret_value())
        found += [
            secret.get_secret_value()
            for secret in (self.upload_access_key_id, self.upload_secret_access_key, self.upload_session_token)
            if secret is not None
        ]
        return [secret for secret in found if secret]

    def readable_dirs(self) -> tuple[Path, ...]:
        """The directories local input files may be read from, resolved; the first is where to copy a file.

        SEEDANCE_ALLOWED_DIRS is honoured as given. By default: the inputs directory (created here, on first use),
        the output directory and the working directory, each only if it is not a filesystem root, the home
        directory or an ancestor of it: hosts such as Claude Desktop start servers in `/`, and a default must not
        quietly open the whole disk to a model.
        """
        if self.allowed_dirs:
            return tuple(d for d in map(_resolved_dir, self.allowed_dirs) if d is not None)
        with contextlib.suppress(OSError):
            self.inputs_dir.expanduser().mkdir(parents=True, exist_ok=True)
        try:
            home = _resolved_dir(Path.home())
        except RuntimeError:  # no home directory known
            home = None
        try:
            cwd: Path | None = Path.cwd()
        except OSError:  # the working directory was deleted
            cwd = None
        dirs: list[Path] = []
        for candidate in (self.inputs_dir, self.output_dir, cwd):
            directory = _resolved_dir(candidate) if candidate is not None else None
            if directory is None or directory in dirs or directory == Path(directory.anchor):
                continue
            if home is not None and home.is_relative_to(directory):
                continue
            dirs.append(directory)
        return tuple(dirs)


def _region_key(catalog: Catalog, name: str, provider: Any, sandbox_as: Any) -> str:
    """SEEDANCE_REGION as a catalog region key, checked against the provider it is for."""
    key = catalog.region_named(name)
    preset_name = sandbox_as if provider == "sandbox" and sandbox_as not in (None, "sandbox") else provider or "ark"
    preset = catalog.presets.get(str(preset_name))
    if preset is None:
        return name
    if not preset.official:
        raise ValueError(
            f"SEEDANCE_REGION applies to Ark itself (the ark and byteplus providers), not to `{preset_name}`; "
            "leave it unset (a gateway's address is SEEDANCE_BASE_URL)"
        )
    cloud = catalog.regions[preset.region].cloud
    choices = [catalog.regions[r].name for r in catalog.regions_of(cloud)]
    if key is None or catalog.regions[key].cloud != cloud:
        raise ValueError(f"SEEDANCE_REGION: {name!r} is not a region of `{preset_name}` (choose: {', '.join(choices)})")
    return key


def _default_inputs_dir(data: dict[str, Any]) -> Path:
    output_dir = data.get("output_dir")
    return (output_dir if isinstance(output_dir, Path) else default_output_dir()) / "inputs"


def _resolved_dir(directory: Path) -> Path | None:
    try:
        return directory.expanduser().resolve()
    except (OSError, RuntimeError):
        return None


def _host_entry(raw: str) -> str:
    """One public host as `host[:port]`, lower-case (a pasted URL is cut down to its host; a bare IPv6 bracketed)."""
    import re

    label = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
    pattern = rf"(?:{label}(?:\.{label})*\.?|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?"
    entry = raw.strip().lower()
    if "://" in entry:
        entry = entry.split("://", 1)[1]
    entry = entry.split("/", 1)[0].rsplit("@", 1)[-1]
    if entry.count(":") > 1 and not entry.startswith("["):
        entry = f"[{entry}]"
    if not re.fullmatch(pattern, entry) or (":" in entry.rsplit("]", 1)[-1] and int(entry.rsplit(":", 1)[1]) > 65535):
        raise ValueError(f"expected host[:port] entries like video.example.com or video.example.com:8443: {raw!r}")
    return entry


def _origin(raw: str, *, wildcard: bool = False) -> str:
    """One web origin, `scheme://host[:port]`, lower-case, without a trailing slash; with `wildcard`, the host may
    start with `*.` (as CSP source lists allow). A path, query, user or other scheme is refused."""
    from urllib.parse import urlsplit

    text = raw.strip().rstrip("/")
    parts = urlsplit(text)
    host = parts.netloc.lower()
    if wildcard and host.startswith("*."):
        host = host[2:]
    if (
        parts.scheme.lower() not in ("http", "https")
        or not host
        or "@" in host
        or parts.path
        or parts.query
        or parts.fragment
        or "*" in host
    ):
        example = "https://cdn.example.com or https://*.example.com" if wildcard else "https://app.example.com"
        raise ValueError(f"expected origins like {example} (scheme and host, no path): {raw!r}")
    _host_entry(host)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def upload_target(url: str) -> tuple[str, str]:
    """The bucket and the key prefix (no slashes around it) of an `s3://bucket/prefix` upload URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    prefix = parts.path.strip("/")
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment or "//" in prefix:
        raise ValueError("SEEDANCE_UPLOAD_URL must look like s3://bucket or s3://bucket/prefix")
    return parts.netloc, prefix


def database_url_secrets(url: str) -> list[str]:
    """The password in a PostgreSQL URL (`postgresql://user:pass@host/db`, or `?password=` in its query) or libpq
    conninfo string (`host=… password=…`), as written and decoded: the only part of it that is secret. The user,
    host, port and database name are ordinary words that appear in unrelated log lines; redacting them would
    mangle those lines. A person chose the password, so it is redacted whole (`Whole`), never by its fragments."""
    import re
    from urllib.parse import parse_qsl, unquote, urlsplit

    found: list[str] = []
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        userinfo = parts.netloc.rpartition("@")[0]
        if ":" in userinfo:
            written = userinfo.split(":", 1)[1]
            found += [written, unquote(written)]
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "password":
                found.append(value)
        found += [m.group(1) for m in re.finditer(r"(?:^|[?&])password=([^&]*)", parts.query)]
    else:
        for match in re.finditer(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", text):
            value = match.group(1)
            if value.startswith("'") and value.endswith("'") and len(value) >= 2:
                value = value[1:-1]
                found += [value, re.sub(r"\\(.)", r"\1", value)]
            else:
                found.append(value)
    return [Whole(secret) for secret in dict.fromkeys(secret for secret in found if secret)]


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from `SEEDANCE_<FIELD>` environment variables (ARK_API_KEY is a fallback key); overrides win.

    Only the entry point calls this. Empty variables count as unset, so a client config may leave one blank.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        if name in ("catalog", "hosted_uploads", "network"):
            continue  # built from catalog_file and prices, set by `serve --http`, or from the proxy variables
        raw = env.get(f"SEEDANCE_{name.upper()}", "").strip()
        if raw:
            values[name] = raw
    if "api_key" not in values and env.get("ARK_API_KEY", "").strip():
        values["api_key"] = env["ARK_API_KEY"].strip()
    if "state_dir" not in values:
        values["state_dir"] = default_state_dir(env)
    if "upload_url" in values:  # the usual AWS variables, read only when uploads are configured
        fallbacks = {
            "upload_access_key_id": ("AWS_ACCESS_KEY_ID",),
            "upload_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
            "upload_session_token": ("AWS_SESSION_TOKEN",),
            "upload_profile": ("AWS_PROFILE",),
            "upload_region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
            "upload_ca_bundle": ("AWS_CA_BUNDLE", "SSL_CERT_FILE"),
        }
        for field, names in fallbacks.items():
            found = next((env[name].strip() for name in names if env.get(name, "").strip()), None)
            if field not in values and found:
                values[field] = found
    if "network" not in overrides:
        try:
            values["network"] = Network.from_environment(env, system=environ is None)
        except ValueError as exc:
            raise _configuration_error(str(exc)) from None
    values.update(overrides)
    settings = Settings.model_validate(values)
    if settings.reconcile_window is not None and settings.reconcile_window < settings.http_timeout:
        # A create can still be answered (and the task made) until the time-out: an empty look before then would
        # call a task the provider is about to make "not created", and a retry would pay for it twice.
        raise _configuration_error(
            f"SEEDANCE_RECONCILE_WINDOW ({settings.reconcile_window:g} s) is shorter than SEEDANCE_HTTP_TIMEOUT "
            f"({settings.http_timeout:g} s): a lost create's task may appear until its time-out has passed. Set it "
            "to at least the time-out, or unset it (default: the time-out plus 30 s)."
        )
    return settings


def _configuration_error(message: str) -> Exception:
    """A ValidationError (what the entry point reports, one line) for a problem found outside the model."""
    from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", "{message}", {"message": message}), loc=(), input=None
    )
    return ValidationError.from_exception_data("Settings", [detail])
