"""uvicorn's httptools protocol with the contract's HTTP layer, for every uvicorn stack (the
counterpart of `server-axum`'s `parse_errors.rs` and hyper's options there):

- a request the parser refuses gets the contract's JSON error, not uvicorn's plain-text 400,
  and no log line (a client could otherwise flood the log): a raw non-ASCII byte in the
  target is the shared rule's 400 sentence, a broken chunked body "could not be read";
- hyper's defaults as limits, which the axum stacks inherit: a request target of more than
  65,534 bytes is a 414, more than 100 headers or a head of more than 417,792 bytes a 431;
- a client gets 10 s from the connection's start, or from its request's first byte, to send
  its request line and headers, then the connection is closed (uvicorn has no such timeout).
"""

from __future__ import annotations

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .contract import (HEADER_READ_TIMEOUT_S, MAX_HEAD_BYTES, MAX_HEADERS, MAX_TARGET_BYTES,
                       NOT_ASCII_TARGET, UNREADABLE_BODY, ApiError, error_response_bytes)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is over a limit."""


class ContractHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._refusal: int | None = None
        self._head_bytes = 0
        self._header_timer = self.loop.call_later(HEADER_READ_TIMEOUT_S, self._headers_too_slow)

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(HEADER_READ_TIMEOUT_S, self._headers_too_slow)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET_BYTES:
            self._refuse_with(414)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if len(self.headers) > MAX_HEADERS:
            self._refuse_with(431)
        self._count(len(name) + len(value) + 4)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_with(431)

    def _refuse_with(self, status: int) -> None:
        self._refusal = status
        raise _Refused

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No route of the contract upgrades: answer the request as it is.
            pass
        except httptools.HttpParserError as err:
            self._refuse(err, data)

    def _refuse(self, err: Exception, data: bytes) -> None:
        """Answers a request the parser refused with the contract's JSON error and closes."""
        if self._refusal is not None:
            error = ApiError(self._refusal)
        elif self.cycle is not None and not self.cycle.response_complete:
            if self.cycle.response_started:
                self.transport.close()
                return
            # The head was read and handed to the application: the body is what broke.
            error = ApiError(400, UNREADABLE_BODY)
        elif isinstance(err, httptools.HttpParserInvalidURLError) and \
                not data.split(b"\r\n", 1)[0].isascii():
            error = ApiError(400, NOT_ASCII_TARGET)
        else:
            error = ApiError(400)
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.write(error_response_bytes(error))
        self.transport.close()
