"""The `metarr-agent` command: serve, check-config, migrate, scan, jobs, cache."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import yaml
from aiohttp import web

from agent import __version__
from agent.cli import cache as cache_cli
from agent.cli import scan as scan_cli
from agent.config import Config, default_config_path, load_config
from agent.config_checks import MASK, effective, mask_values, secrets
from agent.config_model import JOB_TYPES
from agent.errors import UserError
from agent.probe import ffprobe_status, find_ffprobe
from agent.process import DataDirLock, bind, close_all
from agent.queue.model import Job, Status
from agent.root import api_key_file, resolve_api_key
from agent.store import check_store, open_database
from agent.store import jobs as sql
from agent.store.copy import copy_sqlite_to_postgres
from agent.store.pg import redact
from agent.web.app import create_app, server_options

EXIT_OK, EXIT_USER, EXIT_INTERNAL = 0, 1, 2
log = logging.getLogger("agent")


class RedactingFormatter(logging.Formatter):
    """A readable line per record with every configured secret, URL password and ?apikey= value replaced.

    Secrets are replaced wherever they appear (config validation refuses any shorter than
    MIN_SECRET, which would mangle ordinary words); URL passwords and key query values are masked by
    position, so even one the config does not know about stays out of the log.
    """

    def __init__(self, hidden: list[str]) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
        self.hidden = sorted({s for s in hidden if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        """Format, then redact."""
        text = mask_values(super().format(record))
        for secret in self.hidden:
            text = text.replace(secret, MASK)
        return text


def setup_logging(level: str, hidden: list[str]) -> None:
    """Log lines to stderr at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(hidden))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("watchdog").setLevel(logging.WARNING)
    # aiosqlite logs every call with its arguments at debug: whole configs and rows, twice per query.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)


def _load(args: argparse.Namespace) -> Config:
    """Load the config named on the command line, or the default."""
    return load_config(Path(args.config) if args.config else default_config_path())


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the agent until SIGINT/SIGTERM.

    Order matters: the data_dir lock, then the port, then the database check, and only then the key
    and the first line of output, so a refused start changes nothing and says why in one line.
    """
    cfg = _load(args)
    host = "127.0.0.1" if cfg.server.host in ("localhost", "") else cfg.server.host
    with DataDirLock(cfg.data_dir):  # a second agent on this data_dir stops here, naming the first's PID
        sockets = bind(host, cfg.server.port)
        try:
            # damaged, read-only, full or newer than this agent: one line, before any key is made
            check_store(cfg.store_target)
            api_key, generated = resolve_api_key(cfg)
        except BaseException:
            close_all(sockets)
            raise
        setup_logging(cfg.log_level, [*secrets(cfg), api_key])
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only for the printed URL
        if generated:
            print(f"Generated an API key and saved it to {api_key_file(cfg)} (shown once):\n"
                  f"  API key:   {api_key}\n"
                  f"  Dashboard: http://{shown}:{cfg.server.port}/?apikey={api_key}", file=sys.stderr,
                  flush=True)
        else:
            print(f"Dashboard: http://{shown}:{cfg.server.port}/ (API key from "
                  f"{'the config' if cfg.server.api_key else api_key_file(cfg)})", file=sys.stderr, flush=True)

        def serving(_: str) -> None:
            """Called by run_app once the sockets listen and startup is done."""
            log.info("metarr-agent %s serving on http://%s:%d with %d librar%s", __version__, host,
                     cfg.server.port, len(cfg.libraries), "y" if len(cfg.libraries) == 1 else "ies")

        try:
            web.run_app(create_app(cfg, api_key=api_key), sock=sockets, print=serving, access_log=None,
                        **server_options(grace=cfg.jobs.grace_seconds))
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                raise
            raise UserError(f"cannot listen on {host}:{cfg.server.port}: {exc.strerror or exc} "
                            "(another process has the port, or the address is not on this machine; "
                            "change server.host / server.port)") from None
        finally:
            close_all(sockets)
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate and print the effective config with secrets masked."""
    cfg = _load(args)
    print(f"# {cfg.path}: OK")
    print(f"# {ffprobe_status(cfg.probe.ffprobe, find_ffprobe(cfg.probe.ffprobe))}")
    print(yaml.safe_dump(effective(cfg), sort_keys=False, default_flow_style=False), end="")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database to the current schema; with --to, copy the SQLite store into an empty PostgreSQL."""
    if args.to is not None and not args.to.startswith(("postgresql://", "postgres://")):
        raise UserError(f"--to must be a postgresql:// URL (an empty PostgreSQL database), got {redact(args.to)!r}")
    cfg = _load(args)
    if args.to is not None:  # copy data_dir's SQLite store into an empty PostgreSQL, the file left untouched
        source = cfg.data_dir / "metarr.sqlite"
        with DataDirLock(cfg.data_dir, "run `metarr-agent migrate` (the agent migrates at start)"):
            counts = copy_sqlite_to_postgres(source, args.to, cfg.agent.name)
        width = max(map(len, counts))
        for table, rows in counts.items():
            print(f"{table:<{width}}  {rows:>8} row{'' if rows == 1 else 's'}")
        print(f"copied {sum(counts.values())} rows into {redact(args.to)} (libraries owned by agent"
              f" {cfg.agent.name!r}); to use it, put `store: {{url: {redact(args.to)}}}` (with the real password)"
              f" in {cfg.path or 'the config'}; the SQLite file {source} was left untouched")
        return EXIT_OK
    with DataDirLock(cfg.data_dir, "run `metarr-agent migrate` (the agent migrates at start)"):
        before, after = check_store(cfg.store_target, check=False)
    print(f"database {redact(cfg.store_target)}: schema {before} -> {after}"
          + (" (already current)" if before == after else ""))
    return EXIT_OK


ERROR_WIDTH = 60  # the table's last column; `jobs --id N` shows the whole text


def cmd_jobs(args: argparse.Namespace) -> int:
    """List jobs as a table (newest first), optionally filtered by status and type; or show one job whole."""
    statuses = [s.value for s in Status]
    if args.status and args.status not in statuses:
        raise UserError(f"unknown status {args.status!r} (use {', '.join(statuses)})")
    if args.type and args.type not in JOB_TYPES:
        raise UserError(f"unknown job type {args.type!r} (use {', '.join(JOB_TYPES)})")
    if not 1 <= args.limit <= 10000:
        raise UserError(f"--limit must be between 1 and 10000, got {args.limit}")
    if args.id is not None and args.id < 1:
        raise UserError(f"--id must be a job id (1 or more), got {args.id}")
    cfg = _load(args)
    path = redact(cfg.store_target)
    if not cfg.shared_store and not (cfg.data_dir / "metarr.sqlite").exists():
        raise UserError(f"no database at {path}: start the agent once, or run `metarr-agent migrate`")

    async def run() -> tuple[list, int]:
        """Read one job (--id) or one page of jobs."""
        db = open_database(cfg.store_target)
        await db.open()
        try:
            if args.id is not None:
                job = await db.read(sql.get, args.id)
                return ([job] if job else []), (1 if job else 0)
            return await db.read(sql.listing, args.status, args.type, args.limit, 0)
        finally:
            await db.close()

    jobs, total = asyncio.run(run())
    if args.id is not None and not jobs:
        raise UserError(f"no job {args.id} in {path}")
    if args.json:
        data = [j.to_dict() for j in jobs]
        print(json.dumps(data[0] if args.id is not None else data, indent=2))
        return EXIT_OK
    if args.id is not None:
        print_job(jobs[0])
        return EXIT_OK
    rows = [("ID", "TYPE", "PRI", "STATUS", "TRIES", "PROGRESS", "CREATED", "NEXT RETRY", "MESSAGE / ERROR")]
    for j in jobs:
        d = j.to_dict()
        rows.append((str(j.id), j.type, str(j.priority), j.status.value, f"{j.attempts}/{j.max_retries + 1}",
                     f"{j.progress * 100:.0f}%", (d["created_at"] or "")[:19].replace("T", " "),
                     (d["next_retry_at"] or "")[:19].replace("T", " "),
                     _cut(" ".join((j.error or j.message or "").split()))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if len(rows) == 1:
        print("(no jobs)")
        return EXIT_OK
    if total > len(jobs):
        print(f"({len(jobs)} of {total} shown; use --limit)")
    if any(r[-1].endswith("...") for r in rows[1:]):
        print("(an error is cut short; `metarr-agent jobs --id N` shows the whole job)")
    return EXIT_OK


def _cut(text: str) -> str:
    """Text for the table's last column: whole, or cut with "..." when longer than ERROR_WIDTH."""
    return text if len(text) <= ERROR_WIDTH else text[:ERROR_WIDTH - 3].rstrip() + "..."


def print_job(job: Job) -> None:
    """One job in full: every field on its own line, the error and message whole (their own lines kept)."""
    d = job.to_dict()
    fields = [("id", d["id"]), ("type", d["type"]), ("status", d["status"]), ("priority", d["priority"]),
              ("tries", f"{job.attempts}/{job.max_retries + 1}"), ("progress", f"{job.progress * 100:.0f}%"),
              ("created", d["created_at"]), ("started", d["started_at"]), ("completed", d["completed_at"]),
              ("next retry", d["next_retry_at"]), ("depends on", ", ".join(map(str, job.depends_on)) or None),
              ("dedupe key", job.dedupe_key)]
    for name, value in fields:
        if value is not None:
            print(f"{name + ':':<12}{value}")
    for name, value in (("message", job.message), ("error", job.error)):
        if value:
            print(f"{name}:")
            for line in value.splitlines() or [""]:
                print(f"  {line}")
    for name, value in (("payload", job.payload), ("result", job.result)):
        if value not in (None, {}, []):
            print(f"{name}:")
            for line in json.dumps(value, indent=2, ensure_ascii=False).splitlines():
                print(f"  {line}")


class Parser(argparse.ArgumentParser):
    """argparse with the README's exit codes: a usage error is a user error (1), not argparse's 2.

    Subcommand parsers are made with the parent's class, so they inherit this.
    """

    def error(self, message: str) -> NoReturn:
        """Print the usage and the problem on stderr; exit 1."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USER, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = Parser(prog="metarr-agent", description="Metadata sidecar for Kodi and Jellyfin.")
    parser.add_argument("--version", action="version", version=f"metarr-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--config", metavar="PATH", help="config file (default ./config/agent.yaml, else the example)")
        p.set_defaults(fn=fn)
        return p

    add("serve", cmd_serve, "run the agent")
    add("check-config", cmd_check_config, "validate and print the effective config (secrets masked)")
    p = add("migrate", cmd_migrate, "bring the database to the current schema, then exit")
    p.add_argument("--to", metavar="URL", help="instead, copy data_dir's SQLite database into this empty PostgreSQL"
                   " database (postgresql://...); the SQLite file is left untouched")
    p = add("jobs", cmd_jobs, "list jobs as a table (newest first), or show one job whole with --id")
    p.add_argument("--status", help=", ".join(s.value for s in Status))
    p.add_argument("--type", help=", ".join(JOB_TYPES))
    p.add_argument("--limit", type=int, default=50, help="rows to list (1-10000, default 50)")
    p.add_argument("--id", type=int, metavar="N", help="show job N whole: every field, the full error, payload")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _extensions(sub, add)
    return parser


def _extensions(sub: argparse._SubParsersAction, add: Callable) -> None:
    """The scan and cache subcommands live beside the code they drive."""
    scan_cli.add_commands(add)
    cache_cli.add_commands(add)


def main(argv: list[str] | None = None) -> int:
    """Entry point; maps errors to exit codes with one line on stderr."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (1, Parser.error)
        return exc.code if isinstance(exc.code, int) else EXIT_USER
    try:
        return args.fn(args)
    except UserError as exc:
        for line in exc.message.splitlines() or [""]:  # a config's problems, one line each
            print(f"metarr-agent: error: {line}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        logging.getLogger("agent").debug("internal error", exc_info=exc)
        print(f"metarr-agent: internal error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
