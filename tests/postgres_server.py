"""A real PostgreSQL server for the tests: Debian's postgresql, started on 127.0.0.1 as the postgres user.

The server refuses to run as root, so when the tests run as root its commands run through ``runuser``
as ``postgres``; its data folder is a fresh temporary folder owned by that user, removed at the end.
Start and stop are bounded in time.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port

START_SECONDS = 60


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: `make test` installs Debian's postgresql "
            "(apt-get install postgresql)"
        )
    return on_path


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away server and yield its SQLAlchemy URL (database ``postgres``, trust on loopback)."""
    folder = Path(tempfile.mkdtemp(prefix="linewise-pg-"))
    data, socket_dir = folder / "data", folder / "socket"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (folder, socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    run = {"check": True, "capture_output": True, "timeout": START_SECONDS}
    try:
        subprocess.run(
            _as_postgres(
                [
                    _binary("initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            **run,  # type: ignore[arg-type]
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {socket_dir} -c fsync=off"
        subprocess.run(
            _as_postgres(
                [
                    _binary("pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(folder / "server.log"),
                    "-w",
                    "-t",
                    str(START_SECONDS),
                    "start",
                ]
            ),
            **run,  # type: ignore[arg-type]
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                _as_postgres([_binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"]),
                capture_output=True,
                timeout=START_SECONDS,
                check=False,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
