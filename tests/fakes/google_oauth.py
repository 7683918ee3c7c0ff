"""A fake Google OAuth 2.0 token endpoint on loopback, and service-account keys that point at it.

A service-account key's `token_uri` is where google-auth posts its signed JWT assertion
(`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, RFC 7523). The fake checks the assertion as
Google does — RS256 signature by the key's public half, `iss` = the client email, `aud` = Google's token URI,
the cloud-platform scope, a current `iat` / `exp` — and answers `{"access_token", "expires_in",
"token_type": "Bearer"}` with a fresh token each time. `valid(token)` tells the fake Vertex endpoint
whether a Bearer token is one it issued and not yet expired (by `expires_in`, wall clock).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class ServiceAccount:
    """A throwaway service-account key (a fresh RSA key pair), shaped like a downloaded JSON key."""

    token_uri: str
    email: str = "gateway-test@test-project.iam.gserviceaccount.com"
    project_id: str = "test-project"
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def info(self) -> dict[str, str]:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "0123456789abcdef",
            "private_key": pem.decode(),
            "client_email": self.email,
            "client_id": "100000000000000000001",
            "token_uri": self.token_uri,
        }

    def json(self) -> str:
        return json.dumps(self.info())


@dataclass
class FakeGoogleOAuth:
    """`POST /token`. Register the accounts it trusts with `trust()`; set `expires_in` per test."""

    expires_in: int = 3600
    grants: list[dict[str, Any]] = field(default_factory=list)  # the JWT claims of each grant
    _accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.time())
    _refuse: list[tuple[int, str]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def trust(self, account: ServiceAccount) -> None:
        self._accounts[account.email] = account

    def refuse_next(self, status: int = 400, error: str = "invalid_grant") -> None:
        self._refuse.append((status, error))

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and time.time() < expiry

    @property
    def issued(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def reset(self) -> None:
        self.expires_in = 3600
        self.grants.clear()
        self._refuse.clear()

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/token", self._token, methods=["POST"])])

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        if self._refuse:
            status, error = self._refuse.pop(0)
            return JSONResponse({"error": error, "error_description": "Invalid grant."}, status_code=status)
        if form.get("grant_type") != JWT_BEARER:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        claims = self._check(str(form.get("assertion", "")), str(request.url))
        if claims is None:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status_code=400
            )
        self.grants.append(claims)
        with self._lock:
            token = f"ya29.fake-{next(self._counter)}"
            self._tokens[token] = time.time() + self.expires_in
        return JSONResponse({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def _check(self, assertion: str, url: str) -> dict[str, Any] | None:
        try:
            header_b64, claims_b64, sig_b64 = assertion.split(".")
            header, claims = json.loads(_b64decode(header_b64)), json.loads(_b64decode(claims_b64))
        except ValueError:
            return None
        account = self._accounts.get(claims.get("iss", ""))
        if header.get("alg") != "RS256" or account is None:
            return None
        try:
            account.key.public_key().verify(
                _b64decode(sig_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return None
        now = time.time()
        ok = (
            # google-auth signs for Google's token URI whatever `token_uri` it posts to, as Google wants
            claims.get("aud") == GOOGLE_TOKEN_URI
            and account.token_uri == url
            and CLOUD_PLATFORM in str(claims.get("scope", "")).split()
            and claims.get("iat", 0) <= now + 60
            and now < claims.get("exp", 0) <= now + 3700
        )
        return claims if ok else None
