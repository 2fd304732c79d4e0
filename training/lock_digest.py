"""A lock's fingerprint: SHA-256 over its file names and bytes, so that a run records what it saw."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path


def lock_digest(path: Path) -> str:
    """Return the hex SHA-256 of a lock folder's files (names and contents, in name order).

    Parameters
    ----------
    path : Path
        The lock folder.

    Returns
    -------
    str
        64 hex characters; the same files give the same digest wherever the folder lives.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).iterdir() if p.is_file()):
        digest.update(file.name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def session_key(digest: str) -> bytes:
    """Return the pseudonym key of one training run, derived from the lock digest.

    Training pseudonymises with this key so that the same lock splits the same way on every machine
    (same lock, config and seed give the same metrics). The pseudonyms never leave the process.
    """
    return hmac.new(b"linewise-training-split", bytes.fromhex(digest), hashlib.sha256).digest()
