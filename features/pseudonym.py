"""Keyed pseudonyms for patient identifiers.

``pseudonym(id) = hex(HMAC-SHA256(key, utf8(id)))[:16]``: 64 bits, stable for one key, and
unlinkable to the raw id without the key. The key comes from ``LINEWISE_PSEUDONYM_KEY`` (its UTF-8
bytes) or, when that is unset, from a key file created on first use with 32 random bytes, readable
by its owner only, outside the repository (``~/.config/linewise/pseudonym.key`` unless
``LINEWISE_PSEUDONYM_KEY_FILE`` names another path). Whoever holds the key can recompute a
patient's pseudonym with ``linewise pseudonymize``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final

KEY_ENV: Final = "LINEWISE_PSEUDONYM_KEY"
KEY_FILE_ENV: Final = "LINEWISE_PSEUDONYM_KEY_FILE"
PSEUDONYM_LENGTH: Final = 16
_MIN_KEY_BYTES: Final = 16


class PseudonymKeyError(ValueError):
    """The pseudonym key is missing, too short or unreadable."""


def default_key_file(environ: Mapping[str, str]) -> Path:
    """Return where the local key file lives for this environment.

    Parameters
    ----------
    environ : mapping
        Environment variables (pass ``os.environ``).

    Returns
    -------
    Path
        ``LINEWISE_PSEUDONYM_KEY_FILE`` if set, else ``$XDG_CONFIG_HOME/linewise/pseudonym.key``
        (``~/.config`` when ``XDG_CONFIG_HOME`` is unset).
    """
    if environ.get(KEY_FILE_ENV):
        return Path(environ[KEY_FILE_ENV]).expanduser()
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "linewise" / "pseudonym.key"


def resolve_key(environ: Mapping[str, str], *, create: bool = True) -> bytes:
    """Return the pseudonym key: from the environment, else from (or into) the key file.

    Parameters
    ----------
    environ : mapping
        Environment variables (pass ``os.environ``).
    create : bool
        Create the key file with a fresh random key when it does not exist.

    Returns
    -------
    bytes
        The key, at least 16 bytes.

    Raises
    ------
    PseudonymKeyError
        If the key is shorter than 16 bytes, or no key exists and ``create`` is False.
    """
    from_env = environ.get(KEY_ENV)
    if from_env:
        key = from_env.encode("utf-8")
        if len(key) < _MIN_KEY_BYTES:
            raise PseudonymKeyError(f"{KEY_ENV} must be at least {_MIN_KEY_BYTES} bytes, found {len(key)}")
        return key
    path = default_key_file(environ)
    if not path.exists():
        if not create:
            raise PseudonymKeyError(f"no pseudonym key: set {KEY_ENV} or create {path}")
        _create_key_file(path)
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as err:
        raise PseudonymKeyError(f"cannot read the pseudonym key file {path}: {err}") from err
    if len(key) < _MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"the key in {path} must be at least {_MIN_KEY_BYTES} bytes, found {len(key)}"
        )
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")


def pseudonymize(raw_id: str, key: bytes) -> str:
    """Return the pseudonym of one raw patient identifier.

    Parameters
    ----------
    raw_id : str
        The identifier as the site writes it (surrounding whitespace is ignored).
    key : bytes
        The secret key.

    Returns
    -------
    str
        The first 16 hex characters of HMAC-SHA256(key, raw_id).
    """
    digest = hmac.new(key, raw_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_LENGTH]
