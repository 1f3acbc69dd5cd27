"""The todo API on django-ninja + the Django ORM (async views and the ORM's async API) under
uvicorn with uvloop and httptools: the Django row of the axum-vs-FastAPI-vs-django-ninja
comparison that was planned but never published. Importing it configures Django from the
settings the starting process resolved, so it is imported in the server's processes only;
`django_main` starts them.

Written the way Django's and django-ninja's documentation recommend for production: settings
with `DEBUG` off, a `NinjaAPI` with async operations and exception handlers, the ORM's async
methods (`acreate`, `aget`, `asave`, `adelete`, async iteration), which Django runs on one
thread per process (`sync_to_async`, thread-sensitive); PostgreSQL through psycopg 3 with
Django's connection pool (`OPTIONS["pool"]`, `POOL_SIZE` connections, with Django's health
checks, which make it check each connection it hands out),
SQLite with persistent connections and health checks (Django pools no SQLite connections).
Where Django differs from the contract, the ASGI layer in front of it decides: Django reads a
whole body before any view runs, with no limit or timeout (`asgi.PreReadBodies` applies the
contract's body rules first), and its 404 and 405 are pages of its own (`asgi.HttpRules`
answers them from the contract's route table).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl, unquote, urlsplit

import django
from django.conf import settings as django_settings

from . import contract
from .asgi import HttpRules, PreReadBodies
from .contract import ApiError, Database
from .db import SQLITE_PRAGMAS, SqliteFile, unavailable
from .serve import worker_settings


def postgres_settings(database: Database) -> dict:
    """Django's connection settings for the checked `postgres://` URL."""
    url = urlsplit(database.driver_url())
    params = dict(parse_qsl(url.query))
    return {
        "NAME": params.pop("dbname", unquote(url.path.lstrip("/"))),
        "USER": params.pop("user", unquote(url.username or "")),
        "PASSWORD": params.pop("password", unquote(url.password or "")),
        "HOST": params.pop("host", url.hostname or ""),
        "PORT": params.pop("port", str(url.port or "")),
        "OPTIONS": params,
    }


def configure() -> Database:
    settings = worker_settings()
    database = settings.database
    if database.kind == "sqlite":
        connection = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": f"file:{database.path}?mode=rw",
            "OPTIONS": {"init_command": "; ".join(SQLITE_PRAGMAS), "timeout": 5},
            "CONN_MAX_AGE": None,
            "CONN_HEALTH_CHECKS": True,
        }
    else:
        # Django's health checks make its pool check each connection it hands out.
        connection = {"ENGINE": "django.db.backends.postgresql", "CONN_HEALTH_CHECKS": True,
                      **postgres_settings(database)}
        connection["OPTIONS"]["pool"] = {
            "min_size": settings.pool_size,
            "max_size": settings.pool_size,
            "timeout": contract.POOL_TIMEOUT_S,
        }
    django_settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="the todo API keeps no sessions and signs nothing",
        INSTALLED_APPS=["todo_reference"],
        # CommonMiddleware gives responses their Content-Length (its APPEND_SLASH never acts:
        # the contract's paths are checked before Django).
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        ROOT_URLCONF=__name__,
        DATABASES={"default": connection},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()
    # Django logs a line for every 4xx answer; the contract wants none per request.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    return database


DATABASE = configure()

from asgiref.sync import sync_to_async  # noqa: E402 - after configure()
from django.core.asgi import get_asgi_application  # noqa: E402
from django.db import Error as DjangoDatabaseError  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from ninja import NinjaAPI  # noqa: E402
from psycopg_pool import PoolTimeout  # noqa: E402

from .models import Task  # noqa: E402

SQLITE_FILE = SqliteFile(DATABASE.path) if DATABASE.kind == "sqlite" else None


def check_file() -> None:
    if SQLITE_FILE is not None:
        SQLITE_FILE.check()


def json_response(data, status: int = 200) -> HttpResponse:
    return HttpResponse(contract.to_json(data), status=status,
                        content_type=contract.APPLICATION_JSON)


def error_response(err: ApiError) -> HttpResponse:
    return HttpResponse(err.body(), status=err.status, content_type=contract.APPLICATION_JSON)


api = NinjaAPI(openapi_url=None, docs_url=None)


@api.exception_handler(ApiError)
def api_error(_request: HttpRequest, err: ApiError) -> HttpResponse:
    return error_response(err)


@api.exception_handler(DjangoDatabaseError)
def database_error(_request: HttpRequest, err: Exception) -> HttpResponse:
    return error_response(unavailable(err, DATABASE))


api.add_exception_handler(PoolTimeout, database_error)
api.add_exception_handler(OSError, database_error)


@api.exception_handler(Exception)
def internal_error(_request: HttpRequest, _err: Exception) -> HttpResponse:
    return error_response(ApiError(500))


def query(request: HttpRequest) -> bytes:
    return request.META.get("QUERY_STRING", "").encode("latin-1")


@api.api_operation(["GET", "HEAD"], "/")
async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(contract.HELLO, content_type=contract.TEXT_PLAIN)


@api.api_operation(["GET", "HEAD"], "/health")
async def health(request: HttpRequest) -> HttpResponse:
    def ping() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    check_file()
    await sync_to_async(ping)()
    return json_response({"status": "ok", "db": DATABASE.kind})


@api.api_operation(["GET", "HEAD"], "/sleep")
async def sleep(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(contract.parse_sleep(query(request)) / 1000)
    return HttpResponse("OK", content_type=contract.TEXT_PLAIN)


@api.api_operation(["GET", "HEAD"], "/fibonacci")
async def fibonacci(request: HttpRequest) -> HttpResponse:
    return json_response(contract.fibonacci(contract.parse_fibonacci(query(request))))


@api.api_operation(["GET", "HEAD"], "/tasks")
async def list_tasks(request: HttpRequest) -> HttpResponse:
    limit, offset = contract.parse_list_query(query(request))
    check_file()
    tasks = [contract.task_json(t) async for t in Task.objects.order_by("id")[offset:offset + limit]]
    return json_response(tasks)


@api.post("/tasks")
async def create(request: HttpRequest) -> HttpResponse:
    name, done = contract.parse_new_task(request.body)
    check_file()
    task = await Task.objects.acreate(name=name, done=done)
    check_file()
    response = json_response(contract.task_json(task), status=201)
    response["location"] = f"/tasks/{task.id}"
    return response


async def find(task_id: int) -> Task:
    check_file()
    try:
        return await Task.objects.aget(pk=task_id)
    except Task.DoesNotExist:
        raise ApiError.task_not_found(task_id) from None


@api.api_operation(["GET", "HEAD"], "/tasks/{id}")
async def read(request: HttpRequest, id: str) -> HttpResponse:  # noqa: A002 - the route's name
    return json_response(contract.task_json(await find(contract.parse_id_segment(id))))


@api.put("/tasks/{id}")
async def replace(request: HttpRequest, id: str) -> HttpResponse:  # noqa: A002
    task_id = contract.parse_id_segment(id)
    name, done = contract.parse_task_update(request.body)
    task = await find(task_id)
    task.name, task.done = name, done
    await task.asave(update_fields=["name", "done"])
    check_file()
    return json_response(contract.task_json(task))


@api.delete("/tasks/{id}")
async def remove(request: HttpRequest, id: str) -> HttpResponse:  # noqa: A002
    task_id = contract.parse_id_segment(id)
    check_file()
    deleted, _ = await Task.objects.filter(pk=task_id).adelete()
    if deleted == 0:
        raise ApiError.task_not_found(task_id)
    check_file()
    return HttpResponse(status=204)


urlpatterns = [path("", api.urls)]


class Lifespan:
    """ASGI lifespan for Django, which has none: the database connections opened at start (the
    pool filled) and closed at shutdown, as every other stack's pool is."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await sync_to_async(open_connections)()
                except Exception as err:  # noqa: BLE001 - reported as the start-up failure
                    await send({"type": "lifespan.startup.failed",
                                "message": DATABASE.scrub(str(err))})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await sync_to_async(close_connections)()
                await send({"type": "lifespan.shutdown.complete"})
                return


def open_connections() -> None:
    pool = getattr(connection, "pool", None)
    if pool is not None:
        # Filled before Django takes its connection (a pool with one taken is never "full").
        pool.open(wait=True, timeout=30)
    connection.ensure_connection()


def close_connections() -> None:
    connection.close()
    if getattr(connection, "pool", None) is not None:
        connection.close_pool()


# uvicorn serves this: the contract's HTTP layer and routes, its body rules, then Django.
app = Lifespan(HttpRules(PreReadBodies(get_asgi_application()), routes=True))
