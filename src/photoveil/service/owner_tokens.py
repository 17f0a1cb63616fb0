"""Owner tokens: the proof, without an account, that a request comes from whoever uploaded a photo.

A token is 256 random bits, shown once (to the page, and in the email link); only its hash is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable


def new_owner_token() -> tuple[str, str]:
    """A fresh token (URL-safe) and the hash that is stored instead of it."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    # The token is random, not a password: a fast hash loses nothing, and the token cannot be derived.
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hashes: Iterable[str]) -> bool:
    """Whether ``token`` is one of the stored ones; each compared in constant time, all of them always."""
    offered = token_hash(token)
    return any([hmac.compare_digest(offered, stored) for stored in stored_hashes])  # a list: compare all
