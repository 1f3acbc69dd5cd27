"""The database layer of the SQLAlchemy stacks: the `Task` model, engines for both databases
(SQLite opened like every server opens it; PostgreSQL with the URL every driver gets), the
migrations (the SQL files of the Rust crate `shared`, so every stack creates the same table),
the API's database operations, written once for the async stacks (`Tasks`) and the sync one
(`SyncTasks`), and the watch on a SQLite file under a running server (`shared::sqlite_file`'s
rule: once the file is deleted or replaced, every database operation answers 503).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy.exc
from sqlalchemy import (BigInteger, Executable, Result, create_engine, delete, event, insert,
                        select, text, update)
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

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


def make_engine(database: Database, pool_size: int, asynchronous: bool):
    """An engine with a pool of `pool_size` connections, no overflow, and SQLAlchemy's
    "pessimistic" disconnect handling (`pool_pre_ping`: a ping per checkout, as every Rust
    stack's pool checks its connections): async (aiosqlite, asyncpg) or sync (pysqlite,
    psycopg 3). SQLite connections never create the file: `migrate_and_check` did at start-up."""
    if database.kind == "sqlite":
        driver = "aiosqlite" if asynchronous else "pysqlite"
        url = f"sqlite+{driver}:///file:{database.path}?mode=rw&uri=true"
    elif asynchronous:
        # asyncpg's name for `sslmode=disable` (the connection never uses TLS).
        url = "postgresql+asyncpg://" + _dsn(database).replace("sslmode=disable", "ssl=disable")
    else:
        url = "postgresql+psycopg://" + _dsn(database)
    create = create_async_engine if asynchronous else create_engine
    engine = create(url, pool_size=pool_size, max_overflow=0, pool_timeout=POOL_TIMEOUT_S,
                    pool_pre_ping=True)
    if database.kind == "sqlite":
        event.listen(getattr(engine, "sync_engine", engine), "connect", _set_pragmas)
    return engine


def _dsn(database: Database) -> str:
    """The checked PostgreSQL URL without its scheme."""
    return database.driver_url().split("://", 1)[1]


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


class Operation(NamedTuple):
    """One operation of the API's database work, written once for the sync and the async
    sessions: its one statement (as every Rust stack's), what the statement's result means,
    and whether it writes (then it is committed)."""

    statement: Executable
    outcome: Callable[[Result], Any]
    writes: bool = False


def ping() -> Operation:
    return Operation(text("SELECT 1"), lambda _result: None)


def create_task(name: str, done: bool) -> Operation:
    statement = insert(Task).values(name=name, done=done).returning(Task)
    return Operation(statement, lambda result: result.scalar_one(), writes=True)


def _found(task_id: int) -> Callable[[Result], Task]:
    def outcome(result: Result) -> Task:
        task = result.scalar_one_or_none()
        if task is None:
            raise ApiError.task_not_found(task_id)
        return task

    return outcome


def read_task(task_id: int) -> Operation:
    return Operation(select(Task).where(Task.id == task_id), _found(task_id))


def replace_task(task_id: int, name: str, done: bool) -> Operation:
    statement = update(Task).where(Task.id == task_id).values(name=name, done=done) \
        .returning(Task)
    return Operation(statement, _found(task_id), writes=True)


def delete_task(task_id: int) -> Operation:
    def outcome(result: Result) -> None:
        if result.rowcount == 0:
            raise ApiError.task_not_found(task_id)

    return Operation(delete(Task).where(Task.id == task_id), outcome, writes=True)


def list_tasks(limit: int, offset: int) -> Operation:
    statement = select(Task).order_by(Task.id).limit(limit).offset(offset)
    return Operation(statement, lambda result: list(result.scalars().all()))


class _Store:
    """What both kinds of `Tasks` hold: the engine, and the SQLite file checked before every
    operation and after every write (its acknowledgement counts only if the file survived)."""

    def __init__(self, database: Database, pool_size: int, asynchronous: bool):
        self.database = database
        self.pool_size = pool_size
        self.engine = make_engine(database, pool_size, asynchronous)
        self.sqlite_file = SqliteFile(database.path) if database.kind == "sqlite" else None

    def check_file(self) -> None:
        if self.sqlite_file is not None:
            self.sqlite_file.check()


class Tasks(_Store):
    """The database work of the async SQLAlchemy stacks: an async engine and its sessions;
    `run` does one `Operation` in a session."""

    def __init__(self, database: Database, pool_size: int):
        super().__init__(database, pool_size, asynchronous=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def open(self) -> None:
        """Opens the pool's connections now and keeps them, as every Rust stack's pool does
        at start, so that no request has to open one while the database is short of them."""
        connections = [await self.engine.connect() for _ in range(self.pool_size)]
        for connection in connections:
            await connection.close()

    async def close(self) -> None:
        await self.engine.dispose()

    async def run(self, session, operation: Operation):
        self.check_file()
        outcome = operation.outcome(await session.execute(operation.statement))
        if operation.writes:
            await session.commit()
            self.check_file()
        return outcome


class SyncTasks(_Store):
    """The same work for the sync SQLAlchemy stack (Flask): a sync engine and its sessions."""

    def __init__(self, database: Database, pool_size: int):
        super().__init__(database, pool_size, asynchronous=False)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def open(self) -> None:
        """See `Tasks.open`."""
        connections = [self.engine.connect() for _ in range(self.pool_size)]
        for connection in connections:
            connection.close()

    def close(self) -> None:
        self.engine.dispose()

    def run(self, session, operation: Operation):
        self.check_file()
        outcome = operation.outcome(session.execute(operation.statement))
        if operation.writes:
            session.commit()
            self.check_file()
        return outcome
