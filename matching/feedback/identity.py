"""Anonymous ids the server vouches for: issued by the server, signed with HMAC-SHA256.

The page used to file feedback under whatever id the browser sent, so one visitor could
rate under another's id. Now the server issues each browser a random id and a signature
over it (``"<id>.<signature>"``, the *token*); the browser keeps the token, and every
request that writes feedback must present one whose signature checks. A forged,
altered or unsigned token is refused, so ratings land only under ids the server issued
to that browser.

The key is 32 random bytes in a file beside the library (created on first start with
mode 0600, never overwritten); keep it with the database. Deleting it invalidates every
token handed out (browsers then get new ids; the stored feedback stays, reachable by id
from the CLI).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from analysis.errors import ParameterError
from matching.feedback.log import check_user

#: Hex characters of the signature kept in a token (128 bits).
SIGNATURE_CHARS = 32
_KEY_BYTES = 32


def load_or_create_key(path: str | Path) -> bytes:
    """The signing key stored at ``path``; created (0600, exclusively) when missing."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(_KEY_BYTES))
    key = p.read_bytes()
    if len(key) < 16:
        # A half-written key (a crash right after creation): refuse rather than sign with it.
        raise ParameterError(f"the signing key {p.name} is damaged ({len(key)} bytes); delete it to make a new one")
    return key


class IdentitySigner:
    """Issue and check signed anonymous user ids."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ParameterError(f"`key` must be at least 16 bytes (received {len(key)})")
        self._key = key

    @classmethod
    def beside(cls, path: str | Path) -> IdentitySigner:
        """A signer with the key file at ``path`` (created on first use)."""
        return cls(load_or_create_key(path))

    def _signature(self, user_id: str) -> str:
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:SIGNATURE_CHARS]

    def issue(self) -> str:
        """A new random id with its signature: the token to hand to the browser."""
        return self.sign(secrets.token_hex(8))

    def sign(self, user_id: str) -> str:
        check_user(user_id)
        return f"{user_id}.{self._signature(user_id)}"

    def verify(self, token: object) -> str:
        """The user id inside ``token``; :class:`ParameterError` for anything not signed here."""
        if not isinstance(token, str) or len(token) > 64 + 1 + SIGNATURE_CHARS:
            raise ParameterError(f"`user_id` is not an id issued by this server (received a {type(token).__name__})")
        user_id, dot, signature = token.rpartition(".")
        if not dot or not user_id:
            raise ParameterError("`user_id` is not an id issued by this server (it carries no signature)")
        check_user(user_id)
        if not hmac.compare_digest(signature, self._signature(user_id)):
            raise ParameterError("`user_id` is not an id issued by this server (the signature does not match)")
        return user_id


__all__ = ["IdentitySigner", "load_or_create_key"]
