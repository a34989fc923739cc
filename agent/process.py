"""What `serve` holds for the life of the process: the data_dir lock and the listening sockets.

Both are taken before anything else is touched, so a second agent on the same data_dir, or a port
another program holds, stops the start with one line before any migration, key or job is changed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

from agent.errors import UserError

LOCK_NAME = "agent.lock"


class DataDirLock:
    """An exclusive flock on data_dir/agent.lock holding this process's PID; released when closed or at exit."""

    def __init__(self, data_dir: Path, doing: str = "") -> None:
        self.path = data_dir / LOCK_NAME
        self.doing = doing  # what a CLI command wants to do, for the refusal ("run `migrate`")
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock, or raise a UserError naming the PID of the agent that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise UserError(f"cannot create the lock file {self.path}: {exc.strerror or exc} "
                            f"(data_dir must be a folder the agent may write)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            who = f"PID {holder}" if holder else "another process"
            advice = (f"stop it first to {self.doing}" if self.doing
                      else "stop it first, or give this one its own data_dir")
            raise UserError(f"another agent ({who}) is already running with data_dir {self.path.parent}; "
                            f"{advice}") from None
        with contextlib.suppress(OSError):  # the PID only names us to a second agent; a full disk is reported later
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the lock go (the file stays: removing it would let two agents lock two different files)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(data_dir: Path) -> int | None:
    """The PID of the agent holding data_dir's lock (0 when it wrote none), or None when no agent holds it.

    Probes without creating anything: no lock file means no agent ever ran here. The probe takes
    the lock for an instant when it is free, so it never blocks and never leaves a lock behind.
    """
    try:
        fd = os.open(data_dir / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"cannot read the lock file {data_dir / LOCK_NAME}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock {data_dir / LOCK_NAME}: {exc.strerror or exc}") from None
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    """The PID the lock's holder wrote into the file, if it is readable."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def bind(host: str, port: int) -> list[socket.socket]:
    """Bound (not yet listening) TCP sockets for host:port, one per address the host resolves to.

    A port another process holds, or an address that is not on this machine, is a UserError naming it.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (check server.host)") from None
    bound: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in bound:
            sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                        "(another process has the port, or the address is not on this machine; "
                        "change server.host / server.port)") from None
    return bound


def close_all(sockets: list[socket.socket]) -> None:
    """Close sockets the server did not take over (a start that failed before serving)."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()
