"""Bearer tokens with roles. Only sha256 hashes of the tokens are held.

Roles are ordered: admin implies write, write implies read. Which role an RPC needs
is fixed here (:data:`METHOD_ROLES`); health checks and reflection need none.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ranksearch.service.config import AuthSection
from ranksearch.service.errors import PermissionDenied, Unauthenticated

_LEVEL = {"read": 1, "write": 2, "admin": 3}

METHOD_ROLES = {
    "Search": "read", "BatchSearch": "read", "Get": "read", "Embed": "read",
    "Stats": "read", "ListCollections": "read",
    "Upsert": "write", "UpsertStream": "write", "Delete": "write",
    "CreateCollection": "admin", "DeleteCollection": "admin", "Verify": "admin", "Rebuild": "admin",
    "AddVariant": "admin", "RemoveVariant": "admin", "SetTraffic": "admin", "SetShadow": "admin",
    "SetInterleave": "admin", "PromoteVariant": "admin",
    "Feedback": "read", "ExperimentReport": "read",
}
SERVICE_PREFIX = "/ranksearch.v1.SearchService/"


@dataclass(frozen=True)
class Principal:
    name: str
    level: int


class Authenticator:
    def __init__(self, auth: AuthSection):
        self._tokens = [(t.sha256, Principal(t.name, max(_LEVEL[r] for r in t.roles) if t.roles else 0))
                        for t in auth.tokens]
        self.enabled = bool(self._tokens)

    def authenticate(self, metadata) -> Principal | None:
        """Principal for the request's `authorization` metadata; None when auth is off."""
        if not self.enabled:
            return None
        values = [v for k, v in metadata or () if k == "authorization"]
        if not values:
            raise Unauthenticated("authorization", "missing `authorization: Bearer <token>` metadata")
        scheme, _, token = values[0].partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization", "expected `Bearer <token>`")
        digest = hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
        found = None
        for stored, principal in self._tokens:  # compare all: no early exit on a match
            if hmac.compare_digest(stored, digest):
                found = principal
        if found is None:
            raise Unauthenticated("authorization", "unknown token")
        return found

    def authorize(self, principal: Principal | None, method: str) -> None:
        """Raise PermissionDenied unless the principal may call ``method`` (full path)."""
        if principal is None or not method.startswith(SERVICE_PREFIX):
            return
        name = method[len(SERVICE_PREFIX):]
        needed = METHOD_ROLES.get(name, "admin")
        if principal.level < _LEVEL[needed]:
            raise PermissionDenied("authorization", f"token {principal.name!r} lacks the "
                                   f"{needed!r} role needed for {name}")
