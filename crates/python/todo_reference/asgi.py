"""What every ASGI stack (FastAPI, BlackSheep) shares below its framework: the contract's
HTTP-layer rules as ASGI middleware, the JSON error as raw ASGI messages, and reading a request
body the contract's way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from . import contract
from .contract import ApiError


async def send_error(send, err: ApiError, headers: dict[str, str] | None = None) -> None:
    """Sends `err` as the whole response: its status and `{"error":"<sentence>"}`."""
    body = err.body()
    raw_headers = [
        (b"content-type", contract.APPLICATION_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": err.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class HttpRules:
    """ASGI middleware: the contract's HTTP-layer rules for every request, routed or not
    (`contract.check_head`), and routing on the path as sent: the scope's `path` becomes the
    raw path, so that a percent-escape never stands for a route's own characters (`/%74asks`
    is not `/tasks`), while a task id is decoded once, by `contract.parse_id_segment`. With
    `exact_paths`, a path that is not one of the contract's, exactly, is a 404 here, for a
    router that matches paths in any letter case or with a trailing slash (BlackSheep's); with
    `routes`, an unserved method on one of them is the 405 with `allow` here too (Django's
    404 and 405 are pages of its own)."""

    def __init__(self, app, exact_paths: bool = False, routes: bool = False):
        self.app = app
        self.exact_paths = exact_paths or routes
        self.routes = routes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode()
            query = scope.get("query_string", b"")
            target = raw_path + (b"?" + query if query else b"")
            try:
                contract.check_head(target, scope["headers"])
            except ApiError as err:
                await send_error(send, err)
                return
            if self.exact_paths and not contract.is_route(raw_path):
                await send_error(send, ApiError(404))
                return
            if self.routes and scope["method"] not in contract.allowed_methods(raw_path):
                allow = contract.allow_for(raw_path.decode("ascii"))
                await send_error(send, ApiError(405), {"allow": allow})
                return
            scope = dict(scope, path=raw_path.decode("ascii"))
        await self.app(scope, receive, send)


async def read_body(content_type: str | None, content_length: str | None,
                    stream: Callable[[], AsyncIterator[bytes]]) -> bytes:
    """A request body, the contract's way: the content type (415) and the declared length
    (413) first, then (from `stream()`) at most 64 KiB (413), each chunk within 10 s of the
    last (408); a body that cannot be read (a broken chunked coding, a client gone) is a 400."""
    contract.check_json_content_type(content_type)
    contract.check_content_length(content_length)
    body = bytearray()
    chunks = stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), contract.BODY_READ_TIMEOUT_S)
        except StopAsyncIteration:
            return bytes(body)
        except TimeoutError:
            raise ApiError(408) from None
        except Exception:  # noqa: BLE001 - whatever the framework raises for a broken body
            raise ApiError(400, contract.UNREADABLE_BODY) from None
        if len(body) + len(chunk) > contract.MAX_BODY_BYTES:
            raise ApiError(413)
        body += chunk


class PreReadBodies:
    """ASGI middleware for a framework that reads a whole request body before any application
    code runs, with no limit and no timeout (Django's ASGI handler): the contract's body rules
    run here first, in the contract's order. `POST /tasks` and `PUT /tasks/{id}` get the id
    (400), content type (415) and length (413) checks, then the body is read by `read_body`'s
    rules and handed over whole; any other request's body is never read (the contract's
    routes ignore it), as the Rust stacks never read it. Runs inside `HttpRules`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope["path"].encode("ascii")
        try:
            body = await self._body(scope, raw_path, receive)
        except ApiError as err:
            await send_error(send, err)
            return
        handed_over = False

        async def receive_body():
            nonlocal handed_over
            if not handed_over:
                handed_over = True
                return {"type": "http.request", "body": body, "more_body": False}
            # After the body, the application only listens for the client leaving.
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message

        await self.app(scope, receive_body, send)

    async def _body(self, scope, raw_path: bytes, receive) -> bytes:
        if not contract.reads_body(scope["method"], raw_path):
            return b""
        if scope["method"] == "PUT":
            contract.parse_id_segment(raw_path[len(b"/tasks/"):].decode("ascii"))
        headers = {name.lower(): value.decode("latin-1") for name, value in scope["headers"]}

        async def chunks():
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionError("the client left")
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        return await read_body(headers.get(b"content-type"), headers.get(b"content-length"),
                               chunks)
