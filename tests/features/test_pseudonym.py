"""Keyed pseudonyms: the documented HMAC, where the key comes from, and a key file made once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from linewise.features.pseudonym import KEY_ENV, KEY_FILE_ENV, PseudonymKeyError, pseudonymize, resolve_key

# Expected values from openssl, not from the code under test:
#   printf 'PALMARES-0042' | openssl dgst -sha256 -hmac 'another key of enough length'
OPENSSL_VECTOR = ("PALMARES-0042", b"another key of enough length", "22899e5a069032f2")


def test_matches_openssl_hmac_sha256() -> None:
    raw_id, key, expected = OPENSSL_VECTOR
    assert pseudonymize(raw_id, key) == expected
    assert pseudonymize(f"  {raw_id} ", key) == expected  # surrounding spaces are not part of the id


def test_key_changes_everything() -> None:
    raw_id, key, expected = OPENSSL_VECTOR
    assert pseudonymize(raw_id, key + b"!") != expected


def test_key_from_environment() -> None:
    assert resolve_key({KEY_ENV: "a" * 20}) == b"a" * 20


def test_short_key_is_refused() -> None:
    with pytest.raises(PseudonymKeyError, match="at least 16 bytes"):
        resolve_key({KEY_ENV: "short"})


def test_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}
    first = resolve_key(environ)
    path = tmp_path / "linewise" / "pseudonym.key"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert resolve_key(environ) == first


def test_key_file_path_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "site.key"
    resolve_key({KEY_FILE_ENV: str(path)})
    assert path.is_file()


def test_no_key_and_no_creation(tmp_path: Path) -> None:
    with pytest.raises(PseudonymKeyError, match="no pseudonym key"):
        resolve_key({"XDG_CONFIG_HOME": str(tmp_path)}, create=False)


def test_corrupt_key_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("not hex\n")
    with pytest.raises(PseudonymKeyError, match="cannot read the pseudonym key file"):
        resolve_key({KEY_FILE_ENV: str(path)})
