"""Local reference media that reach the provider by URL (checked first by `media.inputs`): stored once per content
hash, shared through a link that expires.

Two places keep them. An S3-compatible bucket (SEEDANCE_UPLOAD_URL; boto3, imported on the first upload): HEAD
before PUT, so a file is uploaded once, then a presigned GET that lasts SEEDANCE_UPLOAD_LINK_HOURS; the objects are
never public. Or, for `serve --http` with SEEDANCE_PUBLIC_URL and no bucket, the server's own uploads directory,
served at `<public url>/media/<sha256>.<ext>` through an HMAC-signed link with an expiry
(`http_server.add_media_route`).

Objects and files are named by content hash only: nothing the caller wrote reaches a key or a path. The bucket,
the keys and the credentials never appear in a result or a log line: results show `shown_link`, errors name the
S3 error code only, and boto3's own loggers are kept at ERROR (their DEBUG lines name the bucket and key).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from seedance_mcp.errors import ConfigurationError

if TYPE_CHECKING:
    from seedance_mcp.config import Settings

CONTENT_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    **{fmt: f"image/{fmt}" for fmt in ("jpeg", "png", "webp", "bmp", "tiff", "gif")},
}
_LINK_LABEL = b"seedance-mcp/upload-links/v1"


@functools.cache
def _stored_name() -> re.Pattern[str]:  # compiled on first use: 3-16 ms, not paid at start-up
    return re.compile(r"^[0-9a-f]{64}\.(mp4|mov|wav|mp3|jpeg|png|webp|bmp|tiff|gif)$")


@functools.cache
def _signed_link() -> re.Pattern[str]:
    return re.compile(r"^https?://[^?#]*/([0-9a-f]{64}\.[a-z0-9]+)\?(?:[^#]*&)?(?:X-Amz-Signature|sig)=")


@functools.cache
def _signed_link_in_text() -> re.Pattern[str]:
    return re.compile(
        r"https?://[^\s\"'<>?#]*/([0-9a-f]{64}\.[a-z0-9]+)\?[^\s\"'<>#]*(?:X-Amz-Signature|sig)=[^\s\"'<>#]*"
    )


def without_links(text: str) -> str:
    """`text` (a provider's error message, say) with every link to an uploaded file shown as `shown_link` does."""
    if "://" not in text:
        return text
    return _signed_link_in_text().sub(lambda match: f"<uploaded {match.group(1)}, link expires>", text)


def shown_link(value: str) -> str | None:
    """How a result shows a link to an uploaded file (`<uploaded <sha256>.mp4, link expires>`), or None if `value`
    is not one: the link names the bucket, its key and the access key id, which results never show."""
    match = _signed_link().match(value)
    return f"<uploaded {match.group(1)}, link expires>" if match else None


def stable_link(value: str) -> str:
    """A link to an uploaded file without its signature and expiry (the same file, whenever it was signed), so that
    identical calls share a fingerprint; anything else as it is."""
    match = _signed_link().match(value)
    return f"upload:{match.group(1)}" if match else value


# -- where uploads go -----------------------------------------------------------------------------------------------


class Uploads(Protocol):
    """Keeps a checked file and gives the provider a link to it that expires. Blocking: call from a thread."""

    def share(self, argument: str, data: bytes, ext: str) -> str: ...


class UploadFailed(ConfigurationError):
    """The upload itself failed (credentials, bucket, network): nothing was sent to the provider."""

    def __init__(self, argument: str, why: str) -> None:
        super().__init__(
            f"`{argument}` could not be uploaded for the provider to fetch: {why}. Nothing was sent to the provider "
            "and nothing was charged."
        )


def content_name(data: bytes, ext: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}.{ext}"


class S3Uploads:
    """An S3-compatible bucket: one object per content hash, shared through presigned GETs."""

    def __init__(self, settings: Settings) -> None:
        from seedance_mcp.config import upload_target

        assert settings.upload_url is not None
        self._bucket, self._prefix = upload_target(settings.upload_url)
        self._settings = settings
        self._link_seconds = max(1, round(settings.upload_link_hours * 3600))
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        for name in ("boto3", "botocore", "s3transfer", "urllib3"):
            logger = logging.getLogger(name)  # their DEBUG and WARNING lines name the bucket, the key, the host
            logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
        try:
            import boto3  # pyright: ignore[reportMissingTypeStubs]  # lazily: ~130 ms, paid on the first upload only
            from botocore.config import Config  # pyright: ignore[reportMissingTypeStubs]
        except ImportError:
            raise ConfigurationError(
                "SEEDANCE_UPLOAD_URL is set but boto3 is not installed: install seedance-mcp[s3] (or boto3) and "
                "restart the server. Nothing was sent to the provider and nothing was charged."
            ) from None
        s = self._settings
        secret = s.upload_secret_access_key
        keys: dict[str, Any] = {}
        if s.upload_access_key_id is not None and secret is not None:
            keys = {
                "aws_access_key_id": s.upload_access_key_id.get_secret_value(),
                "aws_secret_access_key": secret.get_secret_value(),
                "aws_session_token": s.upload_session_token.get_secret_value() if s.upload_session_token else None,
            }
        boto: Any = boto3
        session: Any = boto.session.Session(profile_name=None if keys else s.upload_profile, **keys)
        addressing = s.upload_addressing
        if addressing == "auto":
            host = (s.upload_endpoint or "").split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            plain = (s.upload_endpoint or "").startswith("http://") or host.replace(".", "").isdigit()
            addressing = "path" if plain else "virtual"
        return session.client(
            "s3",
            endpoint_url=s.upload_endpoint,
            region_name=s.upload_region,
            verify=str(s.upload_ca_bundle) if s.upload_ca_bundle else None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": addressing},
                retries={"max_attempts": 4, "mode": "standard"},
                connect_timeout=10,
                read_timeout=120,
                # botocore ≥ 1.36 adds CRC checksums (aws-chunked bodies) to every PUT by default, which several
                # S3-compatible stores (TOS, older MinIO and R2) refuse; the HEAD-then-PUT of a whole file needs none.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def share(self, argument: str, data: bytes, ext: str) -> str:
        from botocore.exceptions import (  # pyright: ignore[reportMissingTypeStubs]
            BotoCoreError,
            ClientError,
            NoCredentialsError,
        )

        name = content_name(data, ext)
        key = f"{self._prefix}/{name}" if self._prefix else name
        try:
            s3 = self._s3()
            try:
                s3.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=CONTENT_TYPES[ext])
            url: str = s3.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._link_seconds
            )
        except NoCredentialsError:
            raise UploadFailed(
                argument,
                "no credentials for the upload bucket were found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE, in the server's environment)",
            ) from None
        except ClientError as exc:
            raise UploadFailed(argument, _refusal(_error_code(exc))) from None
        except BotoCoreError as exc:  # the endpoint cannot be reached, a time-out, bad configuration
            raise UploadFailed(
                argument, f"the upload endpoint could not be used ({type(exc).__name__}); check SEEDANCE_UPLOAD_*"
            ) from None
        return url


def _error_code(exc: Any) -> str:
    error: Mapping[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", "unknown"))


def _refusal(code: str) -> str:
    """An S3 error as words that name neither the bucket nor the key (S3's own messages may name both)."""
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"):
        return (
            f"the bucket refused the credentials ({code}); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
            "AWS_PROFILE"
        )
    if code in ("NoSuchBucket", "PermanentRedirect", "AuthorizationHeaderMalformed", "301", "400"):
        return (
            f"the bucket was not found where configured ({code}); check SEEDANCE_UPLOAD_URL and SEEDANCE_UPLOAD_REGION"
        )
    return f"the bucket answered {code}"


class HostedUploads:
    """`serve --http` with a public URL: files kept in one directory, served by the server itself.

    A stored file's modification time is the expiry of the latest link to it; a file whose links have all expired
    is deleted by the next share at most once an hour (`sweep`), so the directory holds only what a link may still
    fetch."""

    SWEEP_EVERY = 3600.0

    def __init__(
        self,
        directory: Path,
        public_url: str,
        secrets: Callable[[], Sequence[bytes]],
        hours: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directory = directory
        self._public_url = public_url.rstrip("/")
        self._secrets = secrets
        self._keys: dict[str, bytes] | None = None
        self._seconds = max(1, round(hours * 3600))
        self._clock = clock
        self._swept_at: float | None = None
        self._lock = threading.Lock()

    def share(self, argument: str, data: bytes, ext: str) -> str:
        name = content_name(data, ext)
        path = self._directory / name
        now = self._clock()
        expires = int(now) + self._seconds
        try:
            if self._keys is None:
                self._keys = link_keys(self._secrets())  # the state directory's key file, read on the first upload
            fresh = not path.is_file()
            if fresh:
                self._directory.mkdir(parents=True, exist_ok=True)
                spare = path.with_name(f".{name}.{os.getpid()}.{os.urandom(4).hex()}.part")
                spare.write_bytes(data)
                os.replace(spare, path)
            if fresh or path.stat().st_mtime < expires:
                os.utime(path, (expires, expires))
            self._sweep(now)
        except OSError as exc:
            raise UploadFailed(
                argument, f"the server could not store it ({exc.strerror or type(exc).__name__})"
            ) from None
        kid, key = next(iter(self._keys.items()))
        return f"{self._public_url}/media/{name}?exp={expires}&kid={kid}&sig={link_signature(key, name, expires)}"

    def _sweep(self, now: float) -> None:
        """Delete the stored files every link of which has expired, and writes abandoned an hour ago."""
        with self._lock:
            if self._swept_at is not None and now - self._swept_at < self.SWEEP_EVERY:
                return
            self._swept_at = now
        for entry in os.scandir(self._directory):
            try:
                stored = _stored_name().match(entry.name) is not None
                expired = entry.stat(follow_symlinks=False).st_mtime < now - 60
                abandoned = entry.name.endswith(".part") and entry.stat(follow_symlinks=False).st_mtime < now - 3600
                if (stored and expired) or abandoned:
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue  # another server swept it first


def link_keys(secrets: Sequence[bytes]) -> dict[str, bytes]:
    """The link-signing keys by key id, derived from the server's secrets (the first signs; the others still verify,
    so a rotated secret keeps its links good until they expire)."""
    keys: dict[str, bytes] = {}
    for secret in secrets:
        key = hmac.new(secret, _LINK_LABEL, hashlib.sha256).digest()
        keys[hashlib.sha256(key).hexdigest()[:8]] = key
    return keys


def link_signature(key: bytes, name: str, expires: int) -> str:
    mac = hmac.new(key, f"GET\n/media/{name}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def hosted_file(
    keys: Mapping[str, bytes], directory: Path, name: str, query: Mapping[str, str], now: float
) -> tuple[Path, str] | None:
    """The file a hosted link names and its content type, or None when the link is forged, altered or expired (one
    answer for all: no oracle telling which) or the name is not one of ours."""
    match = _stored_name().match(name)
    key = keys.get(query.get("kid", ""))
    expires = query.get("exp", "")
    if match is None or key is None or not expires.isdigit() or len(expires) > 12:
        return None
    expected = link_signature(key, name, int(expires)).encode()
    if not hmac.compare_digest(expected, query.get("sig", "").encode("ascii", "replace")) or now > int(expires):
        return None
    return directory / name, CONTENT_TYPES[match.group(1)]


def uploads_directory(settings: Settings) -> Path:
    return settings.state_dir.expanduser() / "uploads"


def uploads_for(settings: Settings, secrets: Callable[[], Sequence[bytes]]) -> Uploads | None:
    """Where this server puts local references for the provider: the bucket, else (hosted) itself, else nowhere.
    `secrets` gives the hosted links' signing secrets (called on the first upload). Made once per server: the S3
    client is built on the first upload and shared (boto3 clients are thread-safe)."""
    if settings.upload_url:
        return S3Uploads(settings)
    if settings.hosted_uploads and settings.public_url:
        return HostedUploads(uploads_directory(settings), settings.public_url, secrets, settings.upload_link_hours)
    return None
