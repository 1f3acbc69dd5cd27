"""How the WSGI stack serves: gunicorn with its sync workers, started in-process the way
gunicorn documents for custom applications (a `BaseApplication` subclass), on the socket
`serve.start` bound (`bind = "fd://N"`, so port 0 works), with the contract's HTTP layer below
gunicorn's parser (the counterpart of `http_layer` for the uvicorn stacks):

- a request gunicorn's parser refuses gets the contract's JSON error, not gunicorn's HTML page,
  and no log line (a custom worker's `handle_error`); a raw non-ASCII byte in the target, a
  doubled `Host` and a transfer coding other than `chunked` get the shared rules' sentences;
- gunicorn's limits as near hyper's (`contract.MAX_*`) as it allows: a request line of at
  most 8,190 bytes (the most `limit_request_line` takes: a longer target is a 414), 100
  headers, a header of up to a whole head, and the head itself at most 417,792 bytes (counted
  here: gunicorn bounds only each header);
- the shared head rules (`contract.check_head`: exactly one `Host`) before the application;
- a client gets 10 s from the connection's start to send its request line and headers, then
  the connection is closed; a body that makes no progress for 10 s raises `TimeoutError` in
  the application, which answers 408 (gunicorn has neither timeout);
- `100 Continue` goes out when the application first reads the body, so that a request
  refused from its head (415, 413) gets its status at once (gunicorn sends it before the
  application runs);
- SIGTERM and SIGINT both drain: the master closes the socket and the workers finish the
  request in hand (for up to `graceful_timeout`, 5 s) and drop a connection on which no
  request has begun (gunicorn treats SIGINT as a quick shutdown).

A sync worker serves one connection at a time and closes it after the response (no
keep-alive); `WORKERS` is the number of worker processes. The start-up line is printed once
every worker has loaded the application (its pool filled): each of the first W workers writes
a byte to a pipe once it has (gunicorn's `post_worker_init` hook), and the master prints the
line after W bytes. A fatal start-up error is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.http import errors
from gunicorn.workers.sync import SyncWorker

from . import contract
from .contract import ApiError, fail
from .serve import announce, start

# The longest request line gunicorn takes (its maximum `limit_request_line`).
MAX_REQUEST_LINE = 8190
# How far gunicorn's parser reads past the end of a head: one `recv` of its reader.
_READ_AHEAD = 8192
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Dropped(errors.NoMoreData):
    """The connection is closed without an answer (gunicorn drops a `NoMoreData` quietly):
    its head took longer than 10 s, or the worker is stopping and no request has begun."""

    def __init__(self, why: str):
        super().__init__(why.encode())


class ContractSocket(socket.socket):
    """An accepted connection, read the contract's way: its head within 10 s of its start and
    within `MAX_HEAD_BYTES`, then its body with 10 s for each read. `phase` says which is
    being read: `"head"`, `"body"`, or `None` once the response is out."""

    def __init__(self, accepted: socket.socket, worker: ContractWorker):
        super().__init__(accepted.family, accepted.type, accepted.proto, accepted.detach())
        self.worker = worker
        self.phase: str | None = "head"
        self.head_deadline = time.monotonic() + contract.HEADER_READ_TIMEOUT_S
        self.head_bytes = 0
        self.continue_owed = False

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self.phase is None:
            return super().recv(size, flags)
        if self.continue_owed:
            self.continue_owed = False
            self.sendall(_CONTINUE)
        self._wait_for_bytes()
        data = super().recv(size, flags)
        if self.phase == "head":
            self.head_bytes += len(data)
            if self.head_bytes > contract.MAX_HEAD_BYTES + _READ_AHEAD:
                raise errors.LimitRequestHeaders("the head is over the limit")
        return data

    def _wait_for_bytes(self) -> None:
        """Returns once there is something to read; raises `_Dropped` (the head) or
        `TimeoutError` (the body) when the time is up, and `_Dropped` when the worker stops
        before a request has begun. Signals wake it through the worker's pipe."""
        head = self.phase == "head"
        deadline = self.head_deadline if head else \
            time.monotonic() + contract.BODY_READ_TIMEOUT_S
        poll = select.poll()
        poll.register(self, select.POLLIN)
        poll.register(self.worker.PIPE[0], select.POLLIN)
        while True:
            if head and self.head_bytes == 0 and not self.worker.alive:
                raise _Dropped("the worker is stopping")
            left = deadline - time.monotonic()
            events = dict(poll.poll(left * 1000)) if left > 0 else {}
            if self.fileno() in events:
                return
            if not events:
                if head:
                    raise _Dropped("the head took too long")
                raise TimeoutError("the request body stopped arriving")
            try:
                os.read(self.worker.PIPE[0], 64)
            except BlockingIOError:
                pass

    def send(self, data: bytes, flags: int = 0) -> int:
        if data == _CONTINUE and self.phase == "body":
            # gunicorn's answer to `Expect: 100-continue`, written before the application
            # runs: owed until the application reads the body.
            self.continue_owed = True
            return len(data)
        return super().send(data, flags)

    def shutdown(self, how: int) -> None:
        # gunicorn's graceful close: it reads what is left its own way.
        self.phase = None
        super().shutdown(how)


def _api_error(exc: BaseException) -> ApiError:
    """The contract's answer to an exception gunicorn's parser raised."""
    if isinstance(exc, (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName,
                        errors.ConfigurationProblem)):
        return ApiError(500)
    header = getattr(exc, "hdr", None)
    if isinstance(exc, errors.LimitRequestLine):
        return ApiError(414)
    if isinstance(exc, errors.LimitRequestHeaders):
        return ApiError(431)
    if isinstance(exc, errors.InvalidRequestLine) and not str(exc.req).isascii():
        return ApiError(400, contract.NOT_ASCII_TARGET)
    if isinstance(exc, errors.InvalidHeader) and header == "HOST":
        return ApiError(400, contract.ONE_HOST)
    if isinstance(exc, errors.UnsupportedTransferCoding) or \
            (isinstance(exc, errors.InvalidHeader) and header == "TRANSFER-ENCODING"):
        return ApiError(400, contract.CHUNKED_ONLY)
    if isinstance(exc, (errors.InvalidChunkSize, errors.ChunkMissingTerminator,
                        errors.InvalidChunkExtension)):
        return ApiError(400, contract.UNREADABLE_BODY)
    if isinstance(exc, errors.ParseException):
        return ApiError(400)
    return ApiError(500)


class ContractWorker(SyncWorker):
    """gunicorn's sync worker with the contract's HTTP layer (see the module's doc)."""

    def init_signals(self) -> None:
        super().init_signals()
        # SIGINT drains like SIGTERM (gunicorn's workers quit at once on it).
        signal.signal(signal.SIGINT, self.handle_exit)
        signal.siginterrupt(signal.SIGINT, False)

    def handle(self, listener, client, addr) -> None:
        super().handle(listener, ContractSocket(client, self), addr)

    def handle_request(self, listener, req, client, addr) -> None:
        client.phase = "body"
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in req.headers]
        try:
            contract.check_head(req.uri.encode("latin-1"), headers)
        except ApiError as err:
            client.sendall(contract.error_response_bytes(err))
            return
        super().handle_request(listener, req, client, addr)

    def handle_error(self, req, client, addr, exc) -> None:
        """Answers what gunicorn could not serve with the contract's JSON error; logs only a
        fault of its own (a client could otherwise flood the log)."""
        error = _api_error(exc)
        if error.status == 500:
            self.log.error("error handling a request", exc_info=exc)
        try:
            client.sendall(contract.error_response_bytes(error))
        except OSError:
            pass


class _Arbiter(Arbiter):
    """gunicorn's master, with SIGINT draining like SIGTERM and a failed start one line."""

    def handle_int(self) -> None:
        self.handle_term()

    def halt(self, reason=None, exit_status=0) -> None:
        if exit_status == 0:
            super().halt(reason, exit_status)
        else:
            self.stop()
            fail(self.app.stack, "a worker process did not start (see above)")


class _Application(BaseApplication):
    """gunicorn's custom application: its settings given here, the WSGI application made by
    `factory` in each worker (so each opens its own pool)."""

    def __init__(self, stack: str, factory: Callable, options: dict, scrub: Callable[[str], str]):
        self.stack = stack
        self.factory = factory
        self.options = options
        self.scrub = scrub
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        try:
            return self.factory()
        except Exception as err:  # noqa: BLE001 - any failure to start a worker is fatal
            # One line, then the exit status that makes gunicorn halt.
            print(f"{self.stack}: error: {' '.join(self.scrub(str(err)).split())}",
                  file=sys.stderr, flush=True)
            os._exit(Arbiter.WORKER_BOOT_ERROR)

    def run(self) -> None:
        _Arbiter(self).run()


def run_gunicorn(stack: str, about: str, factory: Callable) -> None:
    """Serves the WSGI application `factory()` makes in each worker under gunicorn's sync
    workers, with the contract's HTTP layer."""
    settings, sock, line = start(stack, about)
    workers = settings.workers
    ready_read, ready_write = os.pipe()

    def post_worker_init(worker) -> None:
        # The first W workers tell the master; a replacement has nobody waiting for it.
        if worker.age <= workers:
            os.write(ready_write, b".")

    def announce_when_ready() -> None:
        with open(ready_read, "rb", buffering=0) as ready:
            seen = 0
            while seen < workers:
                got = ready.read(workers - seen)
                if not got:
                    return
                seen += len(got)
        announce(line)

    options = {
        "bind": [f"fd://{sock.detach()}"],
        "workers": workers,
        "worker_class": ContractWorker,
        "graceful_timeout": int(contract.SHUTDOWN_GRACE_S),
        "limit_request_line": MAX_REQUEST_LINE,
        "limit_request_fields": contract.MAX_HEADERS,
        "limit_request_field_size": contract.MAX_HEAD_BYTES,
        "loglevel": "warning",
        "accesslog": None,
        "errorlog": "-",
        "control_socket_disable": True,
        "post_worker_init": post_worker_init,
        "proc_name": stack,
    }
    application = _Application(stack, factory, options, settings.database.scrub)
    threading.Thread(target=announce_when_ready, name="announce", daemon=True).start()
    application.run()
    sys.exit(0)
