"""A throwaway PostgreSQL cluster for the test suite: no network, nothing installed by hand.

``Cluster().start()`` runs ``initdb`` into a fresh directory under /tmp and starts ``postgres``
listening on a Unix socket in that directory only (``listen_addresses=''``: no TCP at all),
with fsync and friends off so start-up and writes are fast. ``new_database()`` hands each test
its own empty database; ``stop()`` kills the server and removes the directory.

The binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<v>/bin``) or
whatever ``initdb`` is on PATH; ``find_pg_bin()`` returns None when there are none, so callers
can skip. initdb and postgres refuse to run as root: as root, the cluster runs as the
``postgres`` system user that the Debian package creates.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

__all__ = ["Cluster", "find_pg_bin", "session_cluster"]

_LOG_TAIL_LINES = 40


def _has_tools(d: Path) -> bool:
    return all((d / name).is_file() and os.access(d / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(d: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin; "9.6" < "15" numerically, not as strings.
    return tuple(int(p) for p in re.findall(r"\d+", d.parent.name)) or (0,)


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None when absent."""
    found = shutil.which("initdb")
    if found:
        # The resolved directory first: a symlink in /usr/local/bin may point at the real
        # /usr/lib/postgresql/<v>/bin, and that is where postgres itself lives.
        for d in (Path(found).resolve().parent, Path(found).parent):
            if _has_tools(d):
                return d
    candidates = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if _has_tools(d)]
    if candidates:
        return max(candidates, key=_version_key)
    return None


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """One throwaway PostgreSQL cluster, reachable only through a Unix socket in ``self.dir``."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_pg_bin()
        self.dir: Path | None = None
        self.started = False
        self.start_seconds: float | None = None
        self._run_as: pwd.struct_passwd | None = None
        self._lock = threading.Lock()

    # -- paths -------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._need_dir() / "data"

    @property
    def log_path(self) -> Path:
        return self._need_dir() / "log"

    @property
    def socket_dir(self) -> Path:
        return self._need_dir()

    def _need_dir(self) -> Path:
        if self.dir is None:
            raise RuntimeError("cluster not started")
        return self.dir

    # -- processes ---------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kwargs: dict = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self._run_as is not None:
            pw = self._run_as
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env.update(HOME=pw.pw_dir, USER=pw.pw_name, LOGNAME=pw.pw_name)
        assert self.bin_dir is not None
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            cwd=self._need_dir(),  # not the caller's cwd: /root is unreadable for postgres
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )

    def _fail(self, what: str, proc: subprocess.CompletedProcess[str] | None) -> RuntimeError:
        parts = [f"PostgreSQL test cluster: {what} failed"]
        if proc is not None:
            parts.append(f"exit code {proc.returncode}")
            out = (proc.stdout + proc.stderr).strip()
            if out:
                parts.append("output:\n" + "\n".join(out.splitlines()[-_LOG_TAIL_LINES:]))
        if self.dir is not None:
            log = _tail(self.log_path)
            if log:
                parts.append(f"server log tail ({self.log_path}):\n{log}")
        return RuntimeError("\n".join(parts))

    def start(self) -> Cluster:
        """initdb + pg_ctl start in a fresh /tmp directory; returns self."""
        with self._lock:
            if self.started:
                return self
            if self.bin_dir is None:
                raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found; install Debian's postgresql")
            t0 = time.monotonic()
            if os.geteuid() == 0:
                try:
                    self._run_as = pwd.getpwnam("postgres")
                except KeyError:
                    raise RuntimeError(
                        "running as root, but there is no 'postgres' system user to run initdb/postgres as "
                        "(they refuse to run as root); install Debian's postgresql package, which creates it"
                    ) from None
            self.dir = Path(tempfile.mkdtemp(prefix="metarr-pg-", dir="/tmp"))
            try:
                self.dir.chmod(0o755)
                if self._run_as is not None:
                    os.chown(self.dir, self._run_as.pw_uid, self._run_as.pw_gid)
                self._initdb()
                self._pg_ctl_start()
            except BaseException:
                self._cleanup()
                raise
            self.started = True
            self.start_seconds = time.monotonic() - t0
            return self

    def _initdb(self) -> None:
        base = ["initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        proc = self._run(*base, "--locale=C.UTF-8", timeout=120)
        if proc.returncode != 0:
            # Locale missing on this system: a half-made data dir would make the retry fail.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            proc = self._run(*base, "--no-locale", timeout=120)
        if proc.returncode != 0:
            raise self._fail("initdb", proc)

    def _pg_ctl_start(self) -> None:
        opts = " ".join(
            [
                "-c listen_addresses=''",
                f"-c unix_socket_directories='{self.socket_dir}'",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        try:
            proc = self._run(
                "pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-o", opts, "-l", str(self.log_path), "start",
                timeout=90,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise self._fail("pg_ctl start (timed out)", None) from None
        if proc.returncode != 0:
            raise self._fail("pg_ctl start", proc)

    def stop(self) -> None:
        """Stop the server (immediate: nothing here is worth a clean shutdown) and remove the directory."""
        with self._lock:
            self.started = False
            self._cleanup()

    def _cleanup(self) -> None:
        if self.dir is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # -- databases ---------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for psycopg: ``postgresql://postgres@/<dbname>?host=<socket dir>``."""
        return f"postgresql://postgres@/{quote(dbname, safe='')}?host={quote(str(self.socket_dir), safe='/')}"

    def new_database(self, prefix: str = "t") -> str:
        """Create a uniquely named empty database and return its URL."""
        import psycopg
        from psycopg import sql

        if not self.started:
            raise RuntimeError("cluster not started")
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_session: Cluster | None = None
_session_lock = threading.Lock()


def session_cluster() -> Cluster | None:
    """The process-wide cluster, started on first use and stopped at exit; None without binaries."""
    global _session
    with _session_lock:
        if _session is not None and _session.started:
            return _session
        bin_dir = find_pg_bin()
        if bin_dir is None:
            return None
        cluster = Cluster(bin_dir).start()
        atexit.register(cluster.stop)
        _session = cluster
        return cluster
