"""The todo API on FastAPI + SQLAlchemy 2 (async ORM sessions; aiosqlite and asyncpg) under
uvicorn with uvloop and httptools: the reference row the published comparisons measured.

Written the way FastAPI's documentation recommends: a lifespan that creates the engine, a
session per request from a dependency with `yield`, `Annotated` dependencies, response models,
exception handlers. Where FastAPI's defaults differ from the contract, it overrides them the
documented way: request bodies are read by a dependency that applies the contract's checks
(content type, size, read timeout, the 400/422 split) instead of FastAPI's body parsing, and
every error, the framework's 404 and 405 included, has a handler answering the contract's JSON.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import contract, db
from .asgi import HttpRules, read_body
from .contract import ApiError
from .db import DATABASE_ERRORS, Tasks, unavailable
from .serve import run_uvicorn, worker_settings

STACK = "fastapi-sqlalchemy"


class TaskOut(BaseModel):
    """A task as the API shows it: `{"id":..,"name":..,"done":..}`."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    done: bool


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = worker_settings()
    app.state.tasks = Tasks(settings.database, settings.pool_size)
    await app.state.tasks.open()
    yield
    await app.state.tasks.close()


def error_response(err: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(err.body(), status_code=err.status, media_type=contract.APPLICATION_JSON,
                    headers=headers)


app = FastAPI(lifespan=lifespan, redirect_slashes=False, openapi_url=None, docs_url=None,
              redoc_url=None)
app.add_middleware(HttpRules)


@app.exception_handler(ApiError)
async def api_error(_request: Request, err: ApiError) -> Response:
    return error_response(err)


@app.exception_handler(StarletteHTTPException)
async def framework_error(request: Request, exc: StarletteHTTPException) -> Response:
    err = ApiError(exc.status_code)
    headers = {"allow": contract.allow_for(request.url.path)} if err.status == 405 else None
    return error_response(err, headers)


@app.exception_handler(RequestValidationError)
async def validation_error(_request: Request, _exc: RequestValidationError) -> Response:
    return error_response(ApiError(400))


async def database_error(request: Request, exc: Exception) -> Response:
    return error_response(unavailable(exc, request.app.state.tasks.database))


for error_type in DATABASE_ERRORS:
    app.add_exception_handler(error_type, database_error)


def get_tasks(request: Request) -> Tasks:
    return request.app.state.tasks


async def get_session(request: Request):
    async with request.app.state.tasks.sessions() as session:
        yield session


TasksDep = Annotated[Tasks, Depends(get_tasks)]
Session = Annotated[AsyncSession, Depends(get_session)]


def task_id(id: str) -> int:  # noqa: A002 - the route's parameter name
    return contract.parse_id_segment(id)


TaskId = Annotated[int, Depends(task_id)]


async def body(request: Request) -> bytes:
    return await read_body(request.headers.get("content-type"),
                           request.headers.get("content-length"), request.stream)


async def new_task(raw: Annotated[bytes, Depends(body)]) -> tuple[str, bool]:
    return contract.parse_new_task(raw)


async def task_update(raw: Annotated[bytes, Depends(body)]) -> tuple[str, bool]:
    return contract.parse_task_update(raw)


def query(request: Request) -> bytes:
    return request.scope.get("query_string", b"")


@app.api_route("/", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def hello() -> str:
    return contract.HELLO


@app.api_route("/health", methods=["GET", "HEAD"])
async def health(tasks: TasksDep, session: Session) -> dict:
    await tasks.run(session, db.ping())
    return {"status": "ok", "db": tasks.database.kind}


@app.api_route("/sleep", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def sleep(request: Request) -> str:
    await asyncio.sleep(contract.parse_sleep(query(request)) / 1000)
    return "OK"


@app.api_route("/fibonacci", methods=["GET", "HEAD"])
async def fibonacci(request: Request) -> dict:
    return contract.fibonacci(contract.parse_fibonacci(query(request)))


@app.api_route("/tasks", methods=["GET", "HEAD"], response_model=list[TaskOut])
async def list_tasks(request: Request, tasks: TasksDep, session: Session):
    limit, offset = contract.parse_list_query(query(request))
    return await tasks.run(session, db.list_tasks(limit, offset))


@app.post("/tasks", status_code=201, response_model=TaskOut)
async def create(response: Response, tasks: TasksDep, session: Session,
                 fields: Annotated[tuple[str, bool], Depends(new_task)]):
    task = await tasks.run(session, db.create_task(*fields))
    response.headers["location"] = f"/tasks/{task.id}"
    return task


@app.api_route("/tasks/{id}", methods=["GET", "HEAD"], response_model=TaskOut)
async def read(task: TaskId, tasks: TasksDep, session: Session):
    return await tasks.run(session, db.read_task(task))


@app.put("/tasks/{id}", response_model=TaskOut)
async def replace(task: TaskId, tasks: TasksDep, session: Session,
                  fields: Annotated[tuple[str, bool], Depends(task_update)]):
    return await tasks.run(session, db.replace_task(task, *fields))


@app.delete("/tasks/{id}", status_code=204, response_class=Response)
async def remove(task: TaskId, tasks: TasksDep, session: Session) -> Response:
    await tasks.run(session, db.delete_task(task))
    return Response(status_code=204)


def main() -> None:
    run_uvicorn(STACK, "The todo API on FastAPI + SQLAlchemy (a reference stack)",
                "todo_reference.fastapi_app:app")


__all__ = ["app", "main"]
