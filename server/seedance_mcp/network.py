"""The proxy and certificate variables people configure (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY, SSL_CERT_FILE,
SSL_CERT_DIR), read once by the entry point (`config.load_settings`) into `Settings.network`, checked there, and
handed to everything that opens a connection: the API and download clients and the readiness check.

They mean what they mean to httpx (and curl): a proxy per scheme, `all` for any, NO_PROXY's hosts go direct, the
lower-case spelling wins; without any of them on macOS and Windows, the system's proxy settings. The clients are
built with `trust_env=False` from this, so nothing reads the environment behind the configuration's back.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import ssl

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
"""What httpx can send through (socks5 with the `socks` extra, which seedance-mcp declares)."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy, and the variable that named it (for messages that tell a person what to fix)."""

    variable: str
    url: str = field(repr=False)
    """As configured, with a scheme: may hold credentials, so it is never shown (see `shown`)."""

    @property
    def shown(self) -> str:
        """The URL without its user and password: what a message or a log line may say."""
        return without_credentials(self.url)

    @property
    def password(self) -> str | None:
        parts = urlsplit(self.url)
        return parts.password or None


@dataclass(frozen=True, slots=True)
class Network:
    """Where requests go: which proxy carries which scheme, which hosts go direct, which CAs are trusted."""

    proxies: Mapping[str, Proxy] = field(default_factory=dict[str, Proxy])
    """By scheme: `http`, `https` and `all` (any scheme)."""
    no_proxy: tuple[str, ...] = ()
    ssl_cert_file: str | None = None
    ssl_cert_dir: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], *, system: bool = False) -> Network:
        """The network configuration `environ` describes; with `system`, the platform's proxy settings when the
        environment names none (macOS, Windows, as urllib reads them). A variable httpx could not use is a
        ValueError naming it (never its password)."""
        found: dict[str, tuple[str, str]] = {}
        for name, value in environ.items():
            lower = name.lower()
            # The lower-case spelling wins over the upper-case one, as in urllib and curl.
            known = lower in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") and value.strip()
            if known and (lower not in found or name == lower):
                found[lower] = (name, value.strip())
        if "REQUEST_METHOD" in environ:
            found.pop("http_proxy", None)  # under CGI, HTTP_PROXY is a request header (httpoxy): urllib's rule
        if system and not found and sys.platform in ("darwin", "win32"):
            import urllib.request

            for scheme, value in urllib.request.getproxies().items():
                if scheme in ("http", "https", "all", "no") and value:
                    found[f"{scheme}_proxy"] = ("the system's proxy settings", value)
        proxies: dict[str, Proxy] = {}
        for scheme in ("http", "https", "all"):
            if f"{scheme}_proxy" in found:
                variable, value = found[f"{scheme}_proxy"]
                proxies[scheme] = _checked_proxy(variable, value)
        no_proxy = tuple(h.strip() for h in found.get("no_proxy", ("", ""))[1].split(",") if h.strip())
        return cls(
            proxies=proxies,
            no_proxy=no_proxy,
            ssl_cert_file=_checked_path(environ, "SSL_CERT_FILE", file=True),
            ssl_cert_dir=_checked_path(environ, "SSL_CERT_DIR", file=False),
        )

    def mounts(self) -> dict[str, Proxy | None]:
        """httpx mount patterns: a proxy for each scheme configured, None (direct) for each NO_PROXY host."""
        if "*" in self.no_proxy:
            return {}
        mounts: dict[str, Proxy | None] = {f"{scheme}://": proxy for scheme, proxy in self.proxies.items()}
        for host in self.no_proxy:
            mounts[_no_proxy_pattern(host)] = None
        return mounts

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy a request to `url` goes through (None: direct): the rule httpx applies to `mounts()`."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        for entry in self.no_proxy:
            if entry == "*" or _bypasses(entry.lower(), scheme, host):
                return None
        return self.proxies.get(scheme) or self.proxies.get("all")

    def secrets(self) -> list[str]:
        """The proxies' passwords (as written and decoded; redacted whole, as a person chose them): never in a
        message or a log line."""
        from urllib.parse import unquote

        from seedance_mcp.errors import Whole

        found: list[str] = []
        for proxy in self.proxies.values():
            written = proxy.password
            if written:
                found += [written, unquote(written)]
        return [Whole(secret) for secret in dict.fromkeys(found)]

    def clients_options(self, limits: object) -> dict[str, object]:
        """Keyword arguments for an httpx client that sends as this configuration says (and reads nothing from the
        environment itself): one SSL context, a proxy transport per mount, `trust_env=False`."""
        import httpx

        context = self.ssl_context()
        mounts: dict[str, httpx.AsyncBaseTransport | None] = {
            pattern: None
            if proxy is None
            else httpx.AsyncHTTPTransport(verify=context, limits=limits, proxy=httpx.Proxy(proxy.url))  # type: ignore[arg-type]
            for pattern, proxy in self.mounts().items()
        }
        return {"verify": context, "trust_env": False, "mounts": mounts, "limits": limits}

    def ssl_context(self) -> ssl.SSLContext:
        """One SSL context for every client: SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's CAs (httpx's rule)."""
        import ssl

        if self.ssl_cert_file:
            return ssl.create_default_context(cafile=self.ssl_cert_file)
        if self.ssl_cert_dir:
            return ssl.create_default_context(capath=self.ssl_cert_dir)
        import certifi

        return ssl.create_default_context(cafile=certifi.where())


def without_credentials(url: str) -> str:
    """`url` without a user or password in it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _checked_proxy(variable: str, value: str) -> Proxy:
    url = value if "://" in value else f"http://{value}"
    shown = without_credentials(url)
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise ValueError(f"{variable}: {shown!r} is not a proxy URL (expected http://host:port)") from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(
            f"{variable}: {shown!r} uses `{scheme}://`, which seedance-mcp cannot send through; use one of "
            f"{', '.join(f'{s}://' for s in PROXY_SCHEMES)} (a SOCKS4 proxy: use its SOCKS5 or HTTP port)"
        )
    if not host:
        raise ValueError(f"{variable}: {shown!r} names no proxy host (expected {scheme}://host:port)")
    del port
    return Proxy(variable, url)


def _checked_path(environ: Mapping[str, str], name: str, *, file: bool) -> str | None:
    from pathlib import Path

    value = environ.get(name, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not (path.is_file() if file else path.is_dir()):
        raise ValueError(f"{name}: {value!r} is not a readable {'file' if file else 'directory'}")
    return str(path)


def _no_proxy_pattern(host: str) -> str:
    """A NO_PROXY entry as httpx mounts it (curl's rules: a domain covers its subdomains)."""
    import ipaddress

    if "://" in host:
        return host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return f"all://[{address}]" if address.version == 6 else f"all://{address}"
    if host.lower() == "localhost":
        return f"all://{host}"
    return f"all://*{host}"


def _bypasses(entry: str, scheme: str, host: str) -> bool:
    """Whether the NO_PROXY `entry` sends `host` direct (as httpx matches the pattern `_no_proxy_pattern` makes)."""
    if "://" in entry:
        entry_scheme, _, entry = entry.partition("://")
        if entry_scheme not in ("all", scheme):
            return False
        entry = entry.split("/", 1)[0].rsplit(":", 1)[0] if not entry.startswith("[") else entry
    entry = entry.strip("[]")
    if entry.startswith("*."):
        return host.endswith(entry[1:])
    if entry.startswith("."):
        return host.endswith(entry)
    entry = entry.removeprefix("*")
    return host == entry or host.endswith(f".{entry}")
