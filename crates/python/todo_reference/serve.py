"""How a Python reference server process starts and stops, the way every Rust server does
(`shared::process`): settings from flags and environment, the socket bound first (port 0 picks
a free port), then the database opened once (migrations, `SELECT 1`), then the one start-up
line, then serving until SIGTERM or SIGINT, which stop accepting, let in-flight requests finish
for up to 5 s and exit 0. A fatal error is one line on stderr and exit 1.

`start` does the first steps for every stack; the ASGI stacks then serve under uvicorn
(`run_uvicorn`), the WSGI stack under gunicorn (`gunicorn_server.run_gunicorn`). `WORKERS` is
the number of server processes (uvicorn's `--workers`: a supervisor and W worker processes on
the one socket when W > 1, the server in this process when W = 1; gunicorn's master and its W
workers); `POOL_SIZE` is each process's pool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from .contract import SHUTDOWN_GRACE_S, Settings, UsageError, fail, settings_from_args
from .db import migrate_and_check

SETTINGS_VAR = "TODO_REFERENCE_SETTINGS"


def init_logging() -> None:
    """Warnings and errors on stderr; nothing per request."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def worker_settings() -> Settings:
    """The settings the starting process resolved, in a worker process."""
    return Settings.from_env(os.environ[SETTINGS_VAR])


def start(stack: str, about: str) -> tuple[Settings, socket.socket, str]:
    """Settings, the bound socket (not yet listening), the opened database and the start-up
    line (with the port the socket got); exits with one line on failure."""
    init_logging()
    try:
        settings = settings_from_args(stack, about)
    except (UsageError, ValueError) as err:
        fail(stack, str(err))
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    addr = f"[{settings.host}]:{settings.port}" if family == socket.AF_INET6 else \
        f"{settings.host}:{settings.port}"
    try:
        sock.bind((settings.host, settings.port))
    except OSError as err:
        fail(stack, f"cannot listen on {addr}: {err.strerror} (os error {err.errno})")
    sock.set_inheritable(True)
    database = settings.database
    try:
        asyncio.run(migrate_and_check(database))
    except Exception as err:  # noqa: BLE001 - any failure to open the database is fatal here
        fail(stack, database.scrub(f"cannot open the database {database}: {err}"))
    os.environ[SETTINGS_VAR] = settings.to_env()
    host, port = sock.getsockname()[:2]
    return settings, sock, settings.listening_line(host, port)


def announce(line: str) -> None:
    """Prints the start-up line, once the server serves."""
    print(line, flush=True)


def _uvicorn_classes():
    """uvicorn's server and supervisor, printing the start-up line once they serve: after the
    application's start-up (the pool opened) in every worker, as the Rust servers print it once
    their store is open, so that a request sent on seeing it is served."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Server(uvicorn.Server):
        def __init__(self, config, line: str):
            super().__init__(config)
            self.line = line

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started and not self.should_exit:
                announce(self.line)

    class Supervisor(Multiprocess):
        def __init__(self, config, sockets, line: str):
            super().__init__(config, sockets)
            self.line = line
            self.failed = False

        def init_processes(self) -> None:
            super().init_processes()
            if all(p.wait_until_ready(60.0, self.should_exit) for p in self.processes):
                announce(self.line)
            else:
                self.failed = True
                self.should_exit.set()

    return Server, Supervisor


def run_uvicorn(stack: str, about: str, app: str) -> None:
    """Serves the ASGI application at import path `app` under uvicorn, with uvloop and
    httptools, as uvicorn's documentation recommends for production (the httptools protocol
    with the contract's HTTP layer: see `http_layer`)."""
    import uvicorn

    from .http_layer import ContractHttpToolsProtocol

    _Server, _Supervisor = _uvicorn_classes()
    settings, sock, line = start(stack, about)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=ContractHttpToolsProtocol,
        lifespan="on",
        workers=settings.workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S),
    )
    sock.listen(config.backlog)
    if settings.workers > 1:
        # Its constructor takes SIGTERM and SIGINT over; the line waits for every worker.
        supervisor = _Supervisor(config, [sock], line)
        supervisor.run()
        if supervisor.failed:
            fail(stack, "a worker process did not start (see above)")
    else:
        server = _Server(config, line)
        # A signal before uvicorn installs its own handlers still stops the server.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
        server.run(sockets=[sock])
    sys.exit(0)
