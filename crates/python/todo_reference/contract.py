"""The API contract's rules, written once for every Python reference stack: configuration and
the start-up line, what a client may send (JSON bodies, content types, ids, query parameters),
the HTTP-layer rules, the errors and the JSON the API answers with.

It follows the Rust crate `shared` rule for rule (`config.rs`, `input.rs`, `http_rules.rs`,
`error.rs`, `task.rs`), sentence for sentence; the conformance suite holds both to the same
statuses and bytes.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote

# The contract's constants (the Rust crate `shared`'s lib.rs).
MAX_BODY_BYTES = 64 * 1024
SHUTDOWN_GRACE_S = 5.0
POOL_TIMEOUT_S = 5.0
HEADER_READ_TIMEOUT_S = 10.0
BODY_READ_TIMEOUT_S = 10.0
HELLO = "Hello, World!"
TEXT_PLAIN = "text/plain; charset=utf-8"
APPLICATION_JSON = "application/json"
MAX_NAME_CHARS = 200
# The servers' own parsers' limits: hyper's defaults, which the axum stacks inherit. A longer
# request target is a 414; more headers, or a longer head, a 431.
MAX_TARGET_BYTES = 65_534
MAX_HEADERS = 100
MAX_HEAD_BYTES = 8192 + 4096 * 100

# The `allow` header of a 405, per path; `HEAD` is served wherever `GET` is.
ALLOW_READ_ONLY = "GET, HEAD"
ALLOW_TASKS = "GET, HEAD, POST"
ALLOW_TASK = "GET, HEAD, PUT, DELETE"


_ROUTE = re.compile(rb"/|/health|/sleep|/fibonacci|/tasks|/tasks/[^/]+")


def is_route(raw_path: bytes) -> bool:
    """Whether a path as sent is one of the contract's routes, exactly (letter case included,
    no trailing slash)."""
    return _ROUTE.fullmatch(raw_path) is not None


def reads_body(method: str, raw_path: bytes) -> bool:
    """Whether the contract's route for this request reads a body: `POST /tasks` and
    `PUT /tasks/{id}` (every other request's body is ignored)."""
    if method == "POST":
        return raw_path == b"/tasks"
    return method == "PUT" and raw_path.startswith(b"/tasks/") and is_route(raw_path)


def allowed_methods(raw_path: bytes) -> list[str]:
    """The methods the contract serves on one of its paths."""
    return allow_for(raw_path.decode("ascii")).split(", ")


def allow_for(path: str) -> str:
    """The `allow` header of a 405 on `path` (one of the contract's routes)."""
    if path == "/tasks":
        return ALLOW_TASKS
    if path.startswith("/tasks/"):
        return ALLOW_TASK
    return ALLOW_READ_ONLY


# --- errors ---------------------------------------------------------------------------------

DEFAULT_MESSAGES = {
    400: "the request is malformed",
    404: "no route matches this path",
    405: "this method is not allowed on this path",
    408: "the request body stopped arriving for 10 seconds",
    413: "the request body is larger than 65536 bytes",
    414: "the request target is too long",
    415: "the request body must be sent with content-type: application/json",
    422: "the request body is not a valid task",
    431: "the request headers are too large",
    503: "the database is unavailable, try again later",
    500: "internal server error",
}


def kind_of(status: int) -> int:
    """The contract's status for a status a framework produced on its own: any other client
    error becomes a 400, any other server error a 500."""
    if status in DEFAULT_MESSAGES:
        return status
    return 400 if 400 <= status < 500 else 500


class ApiError(Exception):
    """An error answer: a status and one readable sentence, sent as `{"error":"<sentence>"}`."""

    def __init__(self, status: int, message: str | None = None):
        status = kind_of(status)
        super().__init__(message or DEFAULT_MESSAGES[status])
        self.status = status
        self.message = message or DEFAULT_MESSAGES[status]

    def body(self) -> bytes:
        return to_json({"error": self.message})

    @staticmethod
    def task_not_found(task_id: int) -> ApiError:
        return ApiError(404, f"task {task_id} not found")


def to_json(value) -> bytes:
    """Compact JSON, non-ASCII as is: the bytes serde_json writes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def task_json(task) -> dict:
    """A task as the API shows it, keys in the contract's order."""
    return {"id": task.id, "name": task.name, "done": task.done}


def fibonacci(maximum: int) -> dict:
    """The Fibonacci numbers 1, 1, 2, 3, 5, ... that are <= `maximum`: how many, and the last."""
    a, b, count, last = 1, 1, 0, 0
    while a <= maximum:
        count, last = count + 1, a
        a, b = b, a + b
    return {"count": count, "last": last}


# --- what a client sends --------------------------------------------------------------------

def check_json_content_type(content_type: str | None) -> None:
    """Accepts `application/json`, with parameters such as `; charset=utf-8`, in any case."""
    media = (content_type or "").split(";", 1)[0].strip()
    if media.lower() != "application/json":
        raise ApiError(415)


def check_content_length(content_length: str | None) -> None:
    """Refuses a body longer than the limit from its `content-length` alone."""
    if content_length is not None and content_length.isdigit() and int(content_length) > MAX_BODY_BYTES:
        raise ApiError(413)


_JSON_WHITESPACE = b" \t\n\r"


class _NotJson(ValueError):
    pass


def _no_constants(name: str):
    raise _NotJson(f"{name} is not JSON")


def _has_lone_surrogate(text: str) -> bool:
    """JSON text may escape a lone surrogate (`"\\ud800"`), which no string holds: serde_json
    accepts it where it ignores a value, and refuses it in a string it reads (a 422)."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def _pairs(pairs):
    """Objects keep their pairs in order, so that a repeated key can be told."""
    return _Object(pairs)


class _Object(dict):
    """A JSON object that remembers which of the task's fields came more than once."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.repeated = set()
        if len(self) != len(pairs):
            keys = [key for key, _ in pairs]
            self.repeated = {key for key in ("name", "done") if keys.count(key) > 1}


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_no_constants)

_TOKEN = re.compile(
    rb'[ \t\n\r]*(?:(?P<s>"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")'
    rb"|(?P<n>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    rb"|(?P<l>true|false|null)|(?P<p>[\[\]{}:,]))"
)


def _grammar_is_json(body: bytes) -> bool:
    """Whether `body` is one JSON value, checked without recursion (so at any depth, as
    serde_json's `IgnoredAny` does): a last resort for bodies too deep for `json`."""
    stack: list[str] = []  # "[" or "{" per open container
    expect = "value"  # value | value_or_end | key | key_or_end | colon | comma_or_end | done
    pos = 0
    while True:
        match = _TOKEN.match(body, pos)
        if match is None:
            return expect == "done" and body[pos:].strip(_JSON_WHITESPACE) == b""
        pos = match.end()
        token = match.group(match.lastgroup)
        kind = match.lastgroup
        if expect in ("key", "key_or_end"):
            if kind == "s":
                expect = "colon"
            elif token == b"}" and expect == "key_or_end":
                stack.pop()
                expect = "comma_or_end" if stack else "done"
            else:
                return False
        elif expect == "colon":
            if token != b":":
                return False
            expect = "value"
        elif expect in ("value", "value_or_end"):
            if kind in ("s", "n", "l"):
                pass
            elif token == b"[":
                stack.append("[")
                expect = "value_or_end"
                continue
            elif token == b"{":
                stack.append("{")
                expect = "key_or_end"
                continue
            elif token == b"]" and expect == "value_or_end":
                stack.pop()
            else:
                return False
            expect = "comma_or_end" if stack else "done"
        elif expect == "comma_or_end":
            if token == b",":
                expect = "key" if stack[-1] == "{" else "value"
            elif token == (b"}" if stack[-1] == "{" else b"]"):
                stack.pop()
                expect = "comma_or_end" if stack else "done"
            else:
                return False
        else:
            return False


def _top_level_fields(body: bytes) -> _Object | None:
    """The top-level members `name` and `done` of a body too deep for `json`, when the body is
    an object: the other members are skipped, as serde_json's typed parse does. `None` when
    they cannot be told apart this way (a nested value under `name` or `done`)."""
    text = body.decode()
    found: list = []
    decoder = json.JSONDecoder(parse_constant=_no_constants)
    pos = len(text) - len(text.lstrip(" \t\n\r"))
    if not text.startswith("{", pos):
        return None
    pos += 1
    depth, in_string, escaped, start = 0, False, False, None
    key = None
    # Walk the characters, tracking depth; at depth 0 read keys and the scalar values wanted.
    i = pos
    while i < len(text):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
                if depth == 0 and key is None and start is not None:
                    key = json.loads(text[start:i + 1])
                    start = None
            i += 1
            continue
        if c == '"':
            in_string = True
            if depth == 0 and key is None:
                start = i
            elif depth == 0 and key in ("name", "done"):
                value, end = decoder.raw_decode(text, i)
                found.append((key, value))
                i = end
                in_string = False
                continue
        elif c in "[{":
            if depth == 0 and key in ("name", "done"):
                return None
            depth += 1
        elif c in "]}":
            depth -= 1
        elif depth == 0 and c == ",":
            key = None
        elif depth == 0 and key in ("name", "done") and c not in " \t\n\r:":
            value, end = decoder.raw_decode(text, i)
            found.append((key, value))
            i = end
            continue
        i += 1
    return _Object(found)


def _parse_object(body: bytes) -> dict:
    """400 for anything that is not JSON; 422 for JSON that is not an object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, f"the request body is not valid JSON: invalid UTF-8 at byte {err.start}") from None
    try:
        start = len(text) - len(text.lstrip(" \t\n\r"))
        value, end = _DECODER.raw_decode(text, start)
        if text[end:].strip(" \t\n\r"):
            raise _NotJson("trailing characters")
    except RecursionError:
        if not _grammar_is_json(body):
            raise ApiError(400, "the request body is not valid JSON") from None
        fields = _top_level_fields(body)
        if fields is None:
            raise ApiError(422, "invalid task: a field has the wrong type") from None
        return fields
    except ValueError as err:
        raise ApiError(400, f"the request body is not valid JSON: {_first_line(err)}") from None
    if not isinstance(value, dict):
        raise ApiError(422, "the request body must be a JSON object")
    return value


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _fields(body: bytes, done_required: bool) -> tuple[str, bool]:
    obj = _parse_object(body)
    if any(_has_lone_surrogate(key) for key in obj):
        raise ApiError(422, "invalid task: a key holds a lone surrogate")
    for key in ("name", "done"):
        if key in getattr(obj, "repeated", ()):
            raise ApiError(422, f"invalid task: duplicate field `{key}`")
    if "name" not in obj:
        raise ApiError(422, "invalid task: missing field `name`")
    name = obj["name"]
    if not isinstance(name, str):
        raise ApiError(422, "invalid task: invalid type for `name`, expected a string")
    if _has_lone_surrogate(name):
        raise ApiError(422, "invalid task: `name` holds a lone surrogate")
    if "done" not in obj:
        if done_required:
            raise ApiError(422, "invalid task: missing field `done`")
        done = False
    else:
        done = obj["done"]
        if not isinstance(done, bool):
            raise ApiError(422, "invalid task: invalid type for `done`, expected a boolean")
    validate_name(name)
    return name, done


def parse_new_task(body: bytes) -> tuple[str, bool]:
    """A `POST /tasks` body: `name` required, `done` optional (false)."""
    return _fields(body, done_required=False)


def parse_task_update(body: bytes) -> tuple[str, bool]:
    """A `PUT /tasks/{id}` body: both fields required."""
    return _fields(body, done_required=True)


# Unicode White_Space, and general category Cf as of Unicode 18 (the Rust table's ranges).
_WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_FORMAT_RANGES = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)


def _is_blank(c: str) -> bool:
    if c in _WHITE_SPACE:
        return True
    code = ord(c)
    return any(a <= code <= b for a, b in _FORMAT_RANGES)


def validate_name(name: str) -> None:
    """Something visible, at most 200 characters, no NUL."""
    if all(_is_blank(c) for c in name):
        raise ApiError(422, "name must not be empty or only white space and invisible characters")
    if len(name) > MAX_NAME_CHARS:
        raise ApiError(422, "name must be at most 200 characters long")
    if "\0" in name:
        raise ApiError(422, "name must not contain the NUL character")


_INTEGER = re.compile(r"[+-]?[0-9]+")
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def _i64(text: str) -> int | None:
    """`text` as Rust's `str::parse::<i64>` reads it: an optional sign and ASCII digits."""
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if I64_MIN <= value <= I64_MAX else None


def parse_id_segment(raw: str) -> int:
    """A task id path segment as sent: percent-decoded once, then a base-10 `i64` (or 400)."""
    value = _i64(unquote(raw, errors="replace"))
    if value is None:
        raise ApiError(400, "the task id must be a base-10 integer that fits in 64 bits")
    return value


def _int_param(query: bytes | str, key: str, low: int, high: int, default: int) -> int:
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    for k, v in parse_qsl(query, keep_blank_values=True, errors="replace"):
        if k == key:
            value = _i64(v)
            if value is None or not low <= value <= high:
                raise ApiError(400, f"query parameter {key} must be an integer from {low} to {high}")
            return value
    return default


def parse_list_query(query: bytes | str) -> tuple[int, int]:
    """`GET /tasks?limit=L&offset=O`: (limit, offset)."""
    return (
        _int_param(query, "limit", 1, 1000, 100),
        _int_param(query, "offset", 0, I64_MAX, 0),
    )


def parse_sleep(query: bytes | str) -> int:
    """`GET /sleep?ms=N`: milliseconds."""
    return _int_param(query, "ms", 0, 10_000, 2)


def parse_fibonacci(query: bytes | str) -> int:
    """`GET /fibonacci?max=N`: the bound."""
    return _int_param(query, "max", 1, 1 << 62, 100_000_000)


# --- the HTTP-layer rules -------------------------------------------------------------------

# The 400 sentences of the HTTP-layer rules, for the servers' own parsers to answer alike.
NOT_ASCII_TARGET = "the request target must be ASCII: percent-encode other characters"
ONE_HOST = "a request must have exactly one Host header"
CHUNKED_ONLY = "the only transfer coding a request body may use is chunked"
UNREADABLE_BODY = "the request body could not be read"


def check_head(target: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """ASCII targets, exactly one `Host`, no transfer coding but `chunked` (each a 400)."""
    if not target.isascii():
        raise ApiError(400, NOT_ASCII_TARGET)
    hosts = sum(1 for name, _ in headers if name.lower() == b"host")
    if hosts != 1:
        raise ApiError(400, ONE_HOST)
    codings = [value for name, value in headers if name.lower() == b"transfer-encoding"]
    if codings and b",".join(codings).strip().lower() != b"chunked":
        raise ApiError(400, CHUNKED_ONLY)


def error_response_bytes(err: ApiError) -> bytes:
    """`err` as a whole HTTP/1.1 response that closes its connection, for a server's own
    parser to write where no application runs."""
    body = err.body()
    return b"".join([
        b"HTTP/1.1 %d %s\r\n" % (err.status, HTTPStatus(err.status).phrase.encode()),
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
        body,
    ])


# --- configuration --------------------------------------------------------------------------

_POSTGRES_PARAMETERS = ("sslmode", "user", "password", "host", "port", "dbname", "application_name")


def secrets(url: str) -> list[str]:
    """Every form a password may take in a database URL (see `shared::config::secrets`)."""
    found: list[str] = []
    rest = url.split("://", 1)[1] if "://" in url else url
    if "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    if "?" in rest:
        for pair in rest.split("?", 1)[1].split("&"):
            if "=" in pair:
                key, value = pair.split("=", 1)
                if key.lower() == "password":
                    found.append(value)
    found += [p for s in found if "@" in s for p in s.split("@") if len(p) >= 2]
    found += [unquote(s.replace("+", " "), errors="replace") for s in found]
    unique = sorted({s for s in found if s}, key=len, reverse=True)
    return unique


def scrub(message: str, url: str) -> str:
    """`message` with every secret of `url` replaced by `***`."""
    for secret in secrets(url):
        message = message.replace(secret, "***")
    return message


@dataclass(frozen=True)
class Database:
    """A parsed `DATABASE_URL`: `kind` is `sqlite` (with `path`) or `postgres` (with `url`)."""

    kind: str
    path: str = ""
    url: str = ""

    @staticmethod
    def parse(url: str) -> Database:
        if url.startswith("sqlite://"):
            path = url[len("sqlite://"):].split("?", 1)[0]
            if not path:
                raise ValueError(f"DATABASE_URL {_quote(url)} names no file; expected sqlite://PATH")
            if path == ":memory:" or path.startswith("file::memory:"):
                raise ValueError(
                    f"DATABASE_URL {_quote(url)} is an in-memory database, which each pooled "
                    "connection would get a separate empty copy of; expected sqlite://PATH of a file"
                )
            return Database("sqlite", path=path)
        if url.startswith(("postgres://", "postgresql://")):
            _postgres_url(url)
            return Database("postgres", url=url)
        raise ValueError(
            f"DATABASE_URL {_quote(scrub(url, url))} is not supported; "
            "expected sqlite://PATH or postgres://USER@HOST/DB"
        )

    def driver_url(self) -> str:
        """The PostgreSQL URL drivers connect with (`sslmode=disable`, checked parameters)."""
        return _postgres_url(self.url)

    def scrub(self, message: str) -> str:
        return scrub(message, self.url) if self.kind == "postgres" else message

    def __str__(self) -> str:
        return f"sqlite://{self.path}" if self.kind == "sqlite" else scrub(self.url, self.url)


def _quote(text: str) -> str:
    """`text` quoted the way Rust's `{:?}` quotes a string."""
    return json.dumps(text, ensure_ascii=False)


def _postgres_url(url: str) -> str:
    base, _, query = url.partition("?")
    kept = []
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key == "sslmode":
            if value not in ("disable", "allow", "prefer"):
                raise ValueError(
                    f"DATABASE_URL {_quote(scrub(url, url))} asks for sslmode={value}, but the "
                    "servers talk to PostgreSQL without TLS; use sslmode=disable"
                )
        elif key in _POSTGRES_PARAMETERS:
            kept.append(pair)
        else:
            raise ValueError(
                f"DATABASE_URL {_quote(scrub(url, url))} has the parameter {_quote(key)}, which the "
                f"servers do not support (supported: {', '.join(_POSTGRES_PARAMETERS)})"
            )
    kept.append("sslmode=disable")
    return f"{base}?{'&'.join(kept)}"


@dataclass(frozen=True)
class Settings:
    """One server's resolved configuration."""

    stack: str
    database: Database
    host: str
    port: int
    workers: int
    pool_size: int

    def listening_line(self, host: str, port: int) -> str:
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return (
            f"listening on http://{addr} (stack={self.stack}, db={self.database.kind}, "
            f"workers={self.workers}, pool={self.pool_size})"
        )

    def to_env(self) -> str:
        """The settings for worker processes, in one environment variable."""
        return json.dumps({
            "stack": self.stack, "kind": self.database.kind, "path": self.database.path,
            "url": self.database.url, "host": self.host, "port": self.port,
            "workers": self.workers, "pool_size": self.pool_size,
        })

    @staticmethod
    def from_env(text: str) -> Settings:
        v = json.loads(text)
        return Settings(v["stack"], Database(v["kind"], v["path"], v["url"]), v["host"], v["port"],
                        v["workers"], v["pool_size"])


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _socket_addr(text: str) -> tuple[str, int]:
    """`IP:PORT` or `[IPv6]:PORT`, as Rust's `SocketAddr` reads it."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})|([0-9.]+):([0-9]{1,5})", text)
    if not match:
        raise ValueError("invalid socket address syntax")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    ipaddress.ip_address(host)
    if port > 65535:
        raise ValueError("invalid socket address syntax")
    return host, port


def _positive(text: str) -> int:
    if not re.fullmatch(r"\+?[0-9]+", text) or int(text) == 0:
        raise ValueError("number would be zero for non-zero type" if text.strip("+0") == "" and text
                         else "invalid digit found in string")
    return int(text)


def settings_from_args(stack: str, about: str, argv: list[str] | None = None) -> Settings:
    """Flags, then environment variables, then defaults; `--help` prints and exits 0; a bad
    value raises `UsageError` (or `ValueError` for `DATABASE_URL`) with one line."""
    parser = _Parser(prog=stack, description=about)
    env = os.environ
    parser.add_argument("--database-url", default=env.get("DATABASE_URL", "sqlite://todo.db"),
                        help="sqlite://PATH (created if missing) or postgres://USER@HOST:PORT/DB "
                             "[env: DATABASE_URL=] [default: sqlite://todo.db]")
    parser.add_argument("--bind", default=env.get("BIND", "127.0.0.1:8000"),
                        help="Listen address; port 0 picks a free port, which the start-up line "
                             "reports [env: BIND=] [default: 127.0.0.1:8000]")
    parser.add_argument("--workers", default=env.get("WORKERS"),
                        help="Worker processes [env: WORKERS=] [default: number of CPU cores]")
    parser.add_argument("--pool-size", default=env.get("POOL_SIZE"),
                        help="Database connections in each worker's pool [env: POOL_SIZE=] "
                             "[default: 2 x WORKERS]")
    args = parser.parse_args(argv)

    def value(flag: str, text: str, convert):
        try:
            return convert(text)
        except ValueError as err:
            raise UsageError(f"invalid value '{text}' for '{flag}': {err}") from None

    host, port = value("--bind <BIND>", args.bind, _socket_addr)
    workers = value("--workers <WORKERS>", args.workers, _positive) if args.workers is not None \
        else (os.cpu_count() or 1)
    pool = value("--pool-size <POOL_SIZE>", args.pool_size, _positive) if args.pool_size is not None \
        else max(2 * workers, 1)
    database = Database.parse(args.database_url)
    return Settings(stack, database, host, port, workers, pool)


def fail(stack: str, message: str) -> None:
    """One line on stderr, and exit 1 at once: no driver thread left behind (aiosqlite's)
    gets to print its own traceback while the interpreter shuts down."""
    print(f"{stack}: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)
