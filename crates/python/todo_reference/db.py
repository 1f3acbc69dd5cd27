"""The database layer of the SQLAlchemy stacks: the `Task` model, engines for both databases
(SQLite opened like every server opens it; PostgreSQL with the URL every driver gets), the
migrations (the SQL files of the Rust crate `shared`, so every stack creates the same table),
and the watch on a SQLite file under a running server (`shared::sqlite_file`'s rule: once the
file is deleted or replaced, every database operation answers 503).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy.exc
from sqlalchemy import BigInteger, delete, event, select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .contract import POOL_TIMEOUT_S, ApiError, Database

log = logging.getLogger("todo_reference")

# The migrations live once, with the Rust servers'.
MIGRATIONS = Path(__file__).resolve().parents[3] / "shared" / "migrations"

# Run on every new SQLite connection (shared::sql::SQLITE_PRAGMAS): the busy timeout first, so
# that switching to WAL waits for other connections instead of failing.
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


class Base(DeclarativeBase):
    pass


class Task(Base):
    """A row of `tasks`: the table the migrations create."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str]
    done: Mapped[bool]


def migration_sql(database: Database) -> str:
    return (MIGRATIONS / database.kind / "0001_create_tasks.sql").read_text()


def _set_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _asyncpg_dsn(database: Database) -> str:
    """The URL SQLAlchemy's asyncpg dialect connects with: the checked URL, `ssl=disable` for
    `sslmode=disable` (the connection never uses TLS)."""
    return database.driver_url().replace("sslmode=disable", "ssl=disable")


def async_engine(database: Database, pool_size: int):
    """An async engine (aiosqlite or asyncpg) with a pool of `pool_size` connections, no
    overflow, and SQLAlchemy's "pessimistic" disconnect handling (`pool_pre_ping`: a ping per
    checkout, as every Rust stack's pool checks its connections). SQLite connections never
    create the file: `migrate_and_check` did at start-up."""
    if database.kind == "sqlite":
        url = f"sqlite+aiosqlite:///file:{database.path}?mode=rw&uri=true"
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0,
                                     pool_timeout=POOL_TIMEOUT_S, pool_pre_ping=True)
        event.listen(engine.sync_engine, "connect", _set_pragmas)
        return engine
    url = "postgresql+asyncpg://" + _asyncpg_dsn(database).split("://", 1)[1]
    return create_async_engine(url, pool_size=pool_size, max_overflow=0,
                               pool_timeout=POOL_TIMEOUT_S, pool_pre_ping=True)


async def fill_pool(engine, pool_size: int) -> None:
    """Opens the pool's connections now and keeps them, as every Rust stack's pool does at
    start, so that no request has to open one while the database is short of connections."""
    connections = [await engine.connect() for _ in range(pool_size)]
    for connection in connections:
        await connection.close()


async def migrate_and_check(database: Database) -> None:
    """Opens the database once at start-up: creates the table if absent, runs `SELECT 1`.
    SQLite is opened with the standard library's driver here (creating the file), so that no
    driver thread outlives a failed start."""
    sql = migration_sql(database)
    if database.kind == "sqlite":
        import sqlite3

        connection = sqlite3.connect(f"file:{database.path}?mode=rwc", uri=True)
        try:
            _set_pragmas(connection, None)
            connection.executescript(sql)
            connection.execute("SELECT 1").fetchall()
        finally:
            connection.close()
        return
    import asyncpg

    connection = await asyncpg.connect(database.driver_url())
    try:
        await connection.execute(sql)
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()


class SqliteFile:
    """The SQLite file as opened at start-up, checked before and after every operation."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        meta = os.fstat(self.fd)
        self.identity = (meta.st_dev, meta.st_ino)

    def problem(self) -> str | None:
        try:
            if os.fstat(self.fd).st_nlink == 0:
                return "was deleted"
        except OSError:
            return "cannot be read"
        try:
            meta = os.stat(self.path)
        except OSError:
            return "is missing"
        return None if (meta.st_dev, meta.st_ino) == self.identity else "was replaced by another file"

    def check(self) -> None:
        problem = self.problem()
        if problem is not None:
            log.warning("database error: the SQLite file %s %s", self.path, problem)
            raise ApiError(503)


def unavailable(err: Exception, database: Database) -> ApiError:
    """The 503 for a failing database; the cause is logged, without secrets, never sent."""
    log.warning("database error: %s", database.scrub(str(err)))
    return ApiError(503)


# What a failing database raises through SQLAlchemy and its drivers.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.DBAPIError,
    sqlalchemy.exc.TimeoutError,
    OSError,
)


class Tasks:
    """The database work of every SQLAlchemy ORM stack, one statement per operation as every
    Rust stack's: an async engine and its sessions, with the SQLite file checked before every
    operation and after every write (its acknowledgement counts only if the file survived)."""

    def __init__(self, database: Database, pool_size: int):
        self.database = database
        self.engine = async_engine(database, pool_size)
        self.pool_size = pool_size
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.sqlite_file = SqliteFile(database.path) if database.kind == "sqlite" else None

    async def open(self) -> None:
        await fill_pool(self.engine, self.pool_size)

    async def close(self) -> None:
        await self.engine.dispose()

    def check_file(self) -> None:
        if self.sqlite_file is not None:
            self.sqlite_file.check()

    async def ping(self, session) -> None:
        self.check_file()
        await session.execute(text("SELECT 1"))

    async def create(self, session, name: str, done: bool) -> Task:
        self.check_file()
        task = Task(name=name, done=done)
        session.add(task)
        await session.commit()
        self.check_file()
        return task

    async def get(self, session, task_id: int) -> Task:
        self.check_file()
        task = await session.get(Task, task_id)
        if task is None:
            raise ApiError.task_not_found(task_id)
        return task

    async def replace(self, session, task_id: int, name: str, done: bool) -> Task:
        self.check_file()
        statement = update(Task).where(Task.id == task_id).values(name=name, done=done) \
            .returning(Task)
        task = (await session.scalars(statement)).one_or_none()
        if task is None:
            raise ApiError.task_not_found(task_id)
        await session.commit()
        self.check_file()
        return task

    async def delete(self, session, task_id: int) -> None:
        self.check_file()
        result = await session.execute(delete(Task).where(Task.id == task_id))
        if result.rowcount == 0:
            raise ApiError.task_not_found(task_id)
        await session.commit()
        self.check_file()

    async def list(self, session, limit: int, offset: int) -> list[Task]:
        self.check_file()
        statement = select(Task).order_by(Task.id).limit(limit).offset(offset)
        return list((await session.scalars(statement)).all())
