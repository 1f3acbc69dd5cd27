"""The todo API on Flask + SQLAlchemy 2 (sync ORM sessions; pysqlite and psycopg 3) under
gunicorn's sync workers: the WSGI baseline, one request at a time per worker process, as most
Python web applications were served before ASGI.

Written the way Flask's documentation recommends for production: an application factory
(`create_app`, which gunicorn calls in each worker, so each opens its own pool), the routes on
a blueprint, error handlers answering the contract's JSON error for everything (the
framework's 404 and 405 included, with the contract's `allow`), and a session per request.
Where Flask's defaults differ from the contract, it overrides them: routes match the path as
sent, exactly (`RawPaths` and `exact_paths`: werkzeug decodes escapes, and merges or redirects
slashes), there is no automatic `OPTIONS`, and request bodies are read by the contract's rules
(content type, size, read timeout, the 400/422 split). The HTTP layer below Flask is
`gunicorn_server`'s.
"""

from __future__ import annotations

import atexit
import time
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from . import contract, db
from .contract import ApiError
from .db import DATABASE_ERRORS, SyncTasks, unavailable
from .gunicorn_server import run_gunicorn
from .serve import worker_settings

STACK = "flask-sqlalchemy"

api = Blueprint("api", __name__)


class RawPaths:
    """WSGI middleware: the application routes on the path as sent (gunicorn's `RAW_URI`), so
    that a percent-escape never stands for a route's own characters (`/%74asks` is not
    `/tasks`), while a task id is decoded once, by `contract.parse_id_segment`."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        raw = environ.get("RAW_URI")
        if raw is not None:
            path = raw.split("?", 1)[0].split("#", 1)[0] if raw.startswith("/") \
                else urlsplit(raw).path
            environ["PATH_INFO"] = path
        return self.app(environ, start_response)


def create_app() -> Flask:
    """The application of one worker process, with its pool opened (and closed at exit)."""
    settings = worker_settings()
    app = Flask(__name__)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False
    tasks = SyncTasks(settings.database, settings.pool_size)
    tasks.open()
    atexit.register(tasks.close)
    app.extensions["tasks"] = tasks
    app.register_blueprint(api)
    app.wsgi_app = RawPaths(app.wsgi_app)
    return app


def tasks() -> SyncTasks:
    return current_app.extensions["tasks"]


def run(operation: db.Operation):
    """One database operation, in a session of its own (each request does one)."""
    with tasks().sessions() as session:
        return tasks().run(session, operation)


def raw_path() -> str:
    return request.environ["PATH_INFO"]


def json_response(value, status: int = 200) -> Response:
    return Response(contract.to_json(value), status=status, mimetype=contract.APPLICATION_JSON)


def text_response(text: str) -> Response:
    return Response(text, mimetype="text/plain")


def error_response(err: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(err.body(), status=err.status, mimetype=contract.APPLICATION_JSON,
                    headers=headers)


@api.before_app_request
def exact_paths() -> None:
    """A path that is not one of the contract's, exactly, is a 404 (werkzeug matches `//` as
    `/`, and redirects some paths with doubled slashes)."""
    if not contract.is_route(raw_path().encode("latin-1")):
        raise ApiError(404)


@api.app_errorhandler(ApiError)
def api_error(err: ApiError) -> Response:
    return error_response(err)


@api.app_errorhandler(HTTPException)
def framework_error(exc: HTTPException) -> Response:
    err = ApiError(exc.code or 500)
    headers = {"allow": contract.allow_for(raw_path())} if err.status == 405 else None
    return error_response(err, headers)


def database_error(err: Exception) -> Response:
    return error_response(unavailable(err, tasks().database))


for error_type in DATABASE_ERRORS:
    api.app_errorhandler(error_type)(database_error)


def body() -> bytes:
    """The request body, the contract's way: the content type (415) and the declared length
    (413) first, then at most 64 KiB of it (413); 10 s without progress is a 408 (the read
    raises `TimeoutError`, see `gunicorn_server`), a body that cannot be read a 400."""
    contract.check_json_content_type(request.headers.get("Content-Type"))
    contract.check_content_length(request.headers.get("Content-Length"))
    try:
        # gunicorn's `wsgi.input` reads until it has this much or the body ends.
        raw = request.stream.read(contract.MAX_BODY_BYTES + 1)
    except TimeoutError:
        raise ApiError(408) from None
    except Exception:  # noqa: BLE001 - whatever the server raises for a broken body
        raise ApiError(400, contract.UNREADABLE_BODY) from None
    if len(raw) > contract.MAX_BODY_BYTES:
        raise ApiError(413)
    return raw


@api.get("/")
def hello() -> Response:
    return text_response(contract.HELLO)


@api.get("/health")
def health() -> Response:
    run(db.ping())
    return json_response({"status": "ok", "db": tasks().database.kind})


@api.get("/sleep")
def sleep() -> Response:
    # A sync worker has no other way to wait: it serves nothing else meanwhile.
    time.sleep(contract.parse_sleep(request.query_string) / 1000)
    return text_response("OK")


@api.get("/fibonacci")
def fibonacci() -> Response:
    return json_response(contract.fibonacci(contract.parse_fibonacci(request.query_string)))


@api.get("/tasks")
def list_tasks() -> Response:
    limit, offset = contract.parse_list_query(request.query_string)
    return json_response([contract.task_json(task) for task in run(db.list_tasks(limit, offset))])


@api.post("/tasks")
def create() -> Response:
    name, done = contract.parse_new_task(body())
    task = run(db.create_task(name, done))
    response = json_response(contract.task_json(task), status=201)
    response.headers["location"] = f"/tasks/{task.id}"
    return response


@api.get("/tasks/<id>")
def read(id: str) -> Response:  # noqa: A002 - the route's parameter name
    return json_response(contract.task_json(run(db.read_task(contract.parse_id_segment(id)))))


@api.put("/tasks/<id>")
def replace(id: str) -> Response:  # noqa: A002
    task_id = contract.parse_id_segment(id)
    name, done = contract.parse_task_update(body())
    return json_response(contract.task_json(run(db.replace_task(task_id, name, done))))


@api.delete("/tasks/<id>")
def remove(id: str) -> Response:  # noqa: A002
    run(db.delete_task(contract.parse_id_segment(id)))
    response = Response(status=204)
    response.headers.remove("Content-Type")
    return response


def main() -> None:
    run_gunicorn(STACK, "The todo API on Flask + SQLAlchemy (a reference stack)", create_app)


__all__ = ["create_app", "main"]
