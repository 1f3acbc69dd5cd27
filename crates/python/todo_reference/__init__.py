"""The Python reference stacks of the workspace: the todo API contract on the Python frameworks
the published comparisons measured, judged by the same conformance suite as the Rust stacks.

`contract` holds the contract's rules once (configuration, what a client may send, errors and
JSON), `db` the database layer (SQLAlchemy models, engines, migrations, the operations, the
SQLite file watch), `serve` how a server process starts and stops, `http_layer` and `asgi` the
HTTP layer under uvicorn and `gunicorn_server` the one under gunicorn; each framework's module
is its glue alone.
"""
