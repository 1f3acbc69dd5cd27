"""The todo API on BlackSheep + SQLAlchemy 2 (async ORM sessions; aiosqlite and asyncpg) under
uvicorn with uvloop and httptools: the Python stack of the published axum-vs-BlackSheep
comparison (`/sleep` and `/fibonacci`), here on the whole contract.

Written the way BlackSheep's documentation recommends: an `Application`, routes on its router,
`on_start`/`on_stop` events for the engine, exception handlers per type, and the `json`/`text`
response helpers with the JSON serializer configured once (`json_settings.use`: compact and
non-ASCII as is, the contract's bytes). Its router answers an unknown method with 404, so the
405s of the contract are a fallback route of their own, as Rocket's are; it matches paths in
any letter case and with a trailing slash, so the contract's exact paths are checked before it.
"""

from __future__ import annotations

import asyncio
import json as std_json
import logging

from blacksheep import Application, Content, Request, Response, json, text
from blacksheep.settings.json import json_settings

from . import contract, db
from .asgi import HttpRules, read_body
from .contract import ApiError
from .db import DATABASE_ERRORS, Tasks, unavailable
from .serve import run_uvicorn, worker_settings

STACK = "blacksheep-sqlalchemy"

json_settings.use(loads=std_json.loads, dumps=lambda value: contract.to_json(value).decode())

application = Application(show_error_details=False)
# BlackSheep logs every handled error at INFO; the contract wants no line per request.
application.logger.setLevel(logging.WARNING)
state: dict[str, Tasks] = {}


async def start(_app: Application) -> None:
    settings = worker_settings()
    state["tasks"] = Tasks(settings.database, settings.pool_size)
    await state["tasks"].open()


async def stop(_app: Application) -> None:
    await state["tasks"].close()


application.on_start += start
application.on_stop += stop


def error_response(err: ApiError, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    return Response(err.status, headers, Content(contract.APPLICATION_JSON.encode(), err.body()))


async def api_error(_app, _request: Request, err: ApiError) -> Response:
    return error_response(err)


async def database_error(_app, _request: Request, err: Exception) -> Response:
    return error_response(unavailable(err, state["tasks"].database))


async def internal_error(_app, _request: Request, _err: Exception) -> Response:
    return error_response(ApiError(500))


application.exceptions_handlers[ApiError] = api_error
for error_type in DATABASE_ERRORS:
    application.exceptions_handlers[error_type] = database_error
application.exceptions_handlers[500] = internal_error

router = application.router


async def not_routed(request: Request) -> Response:
    """404 for an unknown path; 405 with `allow` for a known path and another method."""
    path = request.scope["raw_path"]
    if contract.is_route(path):
        allow = contract.allow_for(path.decode("ascii"))
        return error_response(ApiError(405), [(b"allow", allow.encode())])
    return error_response(ApiError(404))


router.fallback = not_routed


def query(request: Request) -> bytes:
    return request.scope.get("query_string", b"")


def task_id(request: Request) -> int:
    """The `{id}` segment as sent, decoded once by the contract's rule."""
    return contract.parse_id_segment(request.scope["raw_path"][len(b"/tasks/"):].decode("ascii"))


async def body(request: Request) -> bytes:
    return await read_body(
        (request.get_first_header(b"content-type") or b"").decode("latin-1") or None,
        (request.get_first_header(b"content-length") or b"").decode("latin-1") or None,
        request.stream,
    )


def get_and_head(path: str):
    def register(handler):
        router.add("GET", path, handler)
        router.add("HEAD", path, handler)
        return handler

    return register


@get_and_head("/")
async def hello(_request: Request) -> Response:
    return text(contract.HELLO)


@get_and_head("/health")
async def health(_request: Request) -> Response:
    tasks = state["tasks"]
    async with tasks.sessions() as session:
        await tasks.run(session, db.ping())
    return json({"status": "ok", "db": tasks.database.kind})


@get_and_head("/sleep")
async def sleep(request: Request) -> Response:
    await asyncio.sleep(contract.parse_sleep(query(request)) / 1000)
    return text("OK")


@get_and_head("/fibonacci")
async def fibonacci(request: Request) -> Response:
    return json(contract.fibonacci(contract.parse_fibonacci(query(request))))


@get_and_head("/tasks")
async def list_tasks(request: Request) -> Response:
    limit, offset = contract.parse_list_query(query(request))
    tasks = state["tasks"]
    async with tasks.sessions() as session:
        found = await tasks.run(session, db.list_tasks(limit, offset))
    return json([contract.task_json(task) for task in found])


@router.post("/tasks")
async def create(request: Request) -> Response:
    name, done = contract.parse_new_task(await body(request))
    tasks = state["tasks"]
    async with tasks.sessions() as session:
        task = await tasks.run(session, db.create_task(name, done))
    response = json(contract.task_json(task), status=201)
    response.add_header(b"location", f"/tasks/{task.id}".encode())
    return response


@get_and_head("/tasks/{id}")
async def read(request: Request) -> Response:
    found = task_id(request)
    tasks = state["tasks"]
    async with tasks.sessions() as session:
        task = await tasks.run(session, db.read_task(found))
    return json(contract.task_json(task))


@router.put("/tasks/{id}")
async def replace(request: Request) -> Response:
    found = task_id(request)
    name, done = contract.parse_task_update(await body(request))
    tasks = state["tasks"]
    async with tasks.sessions() as session:
        task = await tasks.run(session, db.replace_task(found, name, done))
    return json(contract.task_json(task))


@router.delete("/tasks/{id}")
async def remove(request: Request) -> Response:
    found = task_id(request)
    tasks = state["tasks"]
    async with tasks.sessions() as session:
        await tasks.run(session, db.delete_task(found))
    return Response(204)


# uvicorn serves this: the contract's HTTP-layer rules around the application, and its exact
# paths (BlackSheep matches routes in any letter case and with or without a trailing slash).
app = HttpRules(application, exact_paths=True)


def main() -> None:
    run_uvicorn(STACK, "The todo API on BlackSheep + SQLAlchemy (a reference stack)",
                "todo_reference.blacksheep_app:app")
