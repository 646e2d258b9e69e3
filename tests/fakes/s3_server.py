"""An S3-compatible server on loopback for the upload tests: moto's S3 in server mode, behind a WSGI layer that
checks SigV4 signatures and expiry the way S3 does.

moto accepts any request and any presigned URL (it checks neither signatures nor `X-Amz-Expires`). This layer
recomputes the SigV4 signature (AWS's documented algorithm, written here from the spec, independent of boto3) for
header-signed requests (the server's HEAD and PUT) and presigned ones (the provider's GET), against the keys it is
given, and refuses an unknown key id, a wrong secret, a tampered or an expired link with S3's own 403 XML. Its clock
can be moved forward, so an expired link is tested without waiting.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

_SAFE = "-_.~"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _signature(secret: str, scope: list[str], stamp: str, canonical: str) -> str:
    date, region, service, terminator = scope
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, "/".join(scope), hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), date), region), service), terminator)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _canonical(
    method: str,
    raw_path: str,
    pairs: list[tuple[str, str]],
    headers: Mapping[str, str],
    signed: list[str],
    payload: str,
) -> str:
    query = "&".join(
        f"{quote(k, safe=_SAFE)}={quote(v, safe=_SAFE)}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    lowered = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    canonical_headers = "".join(f"{h}:{lowered.get(h, '')}\n" for h in signed)
    return "\n".join([method, raw_path, query, canonical_headers, ";".join(signed), payload])


def problem(
    method: str, raw_path: str, query: str, headers: Mapping[str, str], secrets: Mapping[str, str], now: float
) -> str | None:
    """Why S3 would refuse this signed request (`Code: message`), or None if it is good (or not signed at all)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    authorization = headers.get("authorization", "")
    if "X-Amz-Signature" in params:
        try:
            key_id, *scope = params["X-Amz-Credential"].split("/")
            stamp, expires = params["X-Amz-Date"], int(params["X-Amz-Expires"])
            signed = params["X-Amz-SignedHeaders"].split(";")
            given = params["X-Amz-Signature"]
        except (KeyError, ValueError):
            return "AuthorizationQueryParametersError: malformed X-Amz-* parameters"
        if key_id not in secrets:
            return "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records."
        if not 1 <= expires <= 604800:
            return "AuthorizationQueryParametersError: X-Amz-Expires must be 1..604800"
        if now > calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")) + expires:
            return "AccessDenied: Request has expired"
        canonical = _canonical(method, raw_path, pairs, headers, signed, "UNSIGNED-PAYLOAD")
    elif authorization.startswith("AWS4-HMAC-SHA256 "):
        fields = dict(part.strip().split("=", 1) for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(","))
        key_id, *scope = fields.get("Credential", "").split("/")
        signed, given = fields.get("SignedHeaders", "").split(";"), fields.get("Signature", "")
        stamp = headers.get("x-amz-date", "")
        if key_id not in secrets:
            return "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records."
        payload = headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        canonical = _canonical(method, raw_path, pairs, headers, signed, payload)
    else:
        return "AccessDenied: Anonymous access is not allowed"  # the objects are never public
    if len(scope) != 4 or not hmac.compare_digest(_signature(secrets[key_id], scope, stamp, canonical), given):
        return "SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided."
    return None


class SignatureChecking:
    """WSGI middleware in front of moto: every request must be signed with a known key, as S3 wants."""

    def __init__(self, app: Callable[..., Iterable[bytes]], secrets: Mapping[str, str]) -> None:
        self.app, self.secrets = app, secrets
        self.offset = 0.0
        """Seconds added to the real clock (a test moves time forward to expire a link)."""
        self.seen: list[tuple[str, str, str]] = []
        """(method, path, outcome) of every request: `ok` or the S3 error code."""
        self.plain_bodies_only = False
        """Refuse what several S3-compatible stores do not implement: aws-chunked bodies and checksum trailers."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        raw_path = raw_uri.split("?", 1)[0]
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):  # WSGI keeps these two without the HTTP_ prefix
            if environ.get(name):
                headers[name.replace("_", "-").lower()] = environ[name]
        method = environ["REQUEST_METHOD"]
        found = problem(
            method, raw_path, environ.get("QUERY_STRING", ""), headers, self.secrets, time.time() + self.offset
        )
        extensions = ("x-amz-trailer", "x-amz-sdk-checksum-algorithm", "x-amz-decoded-content-length")
        chunked = "aws-chunked" in headers.get("content-encoding", "") or any(h in headers for h in extensions)
        if found is None and self.plain_bodies_only and chunked:
            found = "NotImplemented: A header you provided implies functionality that is not implemented"
        if found is None:
            self.seen.append((method, raw_path, "ok"))
            return self.app(environ, start_response)
        code, _, message = found.partition(": ")
        self.seen.append((method, raw_path, code))
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
        start_response(
            "501 Not Implemented" if code == "NotImplemented" else "403 Forbidden",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body.encode())))],
        )
        return [body.encode()] if method != "HEAD" else [b""]


class CheckedS3:
    """moto's S3 on 127.0.0.1 (a free port) behind SignatureChecking; `with CheckedS3({key_id: secret}) as s3:`."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        from moto.moto_server.werkzeug_app import (  # pyright: ignore[reportMissingTypeStubs]
            DomainDispatcherApplication,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.front = SignatureChecking(DomainDispatcherApplication(create_backend_app), secrets)
        self.server = make_server("127.0.0.1", 0, self.front, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CheckedS3:
        from moto.moto_api._internal.models import (  # pyright: ignore[reportMissingTypeStubs]
            moto_api_backend,  # pyright: ignore[reportUnknownVariableType]
        )

        moto_api_backend.reset()  # moto keeps its buckets in the process: each server starts empty
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
