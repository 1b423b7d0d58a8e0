"""Imported by the oracles' fork server (mlflow_oracle.py) before its first fork, never by the test process.

It imports the libraries MLflow's server and command use, and the parts of mlflow that do not import `mlflow.server`,
while recording every environment variable those imports read. Some mlflow modules read settings as they are imported:
the webhook secrets' key, for one, is read as the registry's database models are defined. An oracle whose environment
differs from the fork server's in any variable read here would serve with a stale setting. Such an oracle is started as a
plain `mlflow server` instead (`stale`).

`mlflow.server` is never imported here. It reads its settings from the environment as it is imported (the Prometheus
exporter, the security middleware), and takes itself for a serving process when uvicorn was imported before it: so
uvicorn is not imported here either, and the command process (which never imports it) and the worker (which imports it
first) see what the real ones see. `prometheus_client` reads its directory as it is imported and is left out too.
"""

import importlib
import os

MODULES = [
    "fastapi", "fastapi.responses", "flask", "flask_cors", "flask_wtf",
    "starlette.middleware.wsgi", "sqlalchemy", "sqlalchemy.orm", "sqlalchemy.dialects.sqlite", "alembic",
    "alembic.command", "alembic.config", "alembic.runtime.migration", "alembic.script", "pandas", "pyarrow", "numpy",
    "scipy", "aiohttp", "pydantic", "pydantic.v1", "google.protobuf", "cryptography.fernet", "opentelemetry.sdk.trace",
    "databricks.sdk", "requests", "yaml", "jinja2", "sqlparse", "cloudpickle", "werkzeug", "click", "psycopg2",
    "mlflow", "mlflow.tracking", "mlflow.entities", "mlflow.protos.service_pb2", "mlflow.store.db.utils",
    "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store", "mlflow.pyfunc",
    "mlflow.gateway.config", "mlflow.types.responses",
]

# Marks a read of the whole environment (an iteration): any difference then makes an oracle stale.
EVERYTHING = "*"


class _Recording(os._Environ):
    """`os.environ` as it is, noting each variable read (`get` and `in` go through `__getitem__`)."""

    def __init__(self, environ, read):
        super().__init__(environ._data, environ.encodekey, environ.decodekey, environ.encodevalue, environ.decodevalue)
        self.read = read

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __iter__(self):
        self.read.add(EVERYTHING)
        return super().__iter__()


def _load():
    """Imports `MODULES` under a recording `os.environ`; the variables read and their values then."""
    read, environ = set(), os.environ
    os.environ = _Recording(environ, read)
    try:
        for name in MODULES:
            importlib.import_module(name)
    finally:
        os.environ = environ
    modules = __import__("sys").modules
    assert "mlflow.server" not in modules, "a preloaded module imported mlflow.server"
    assert "uvicorn" not in modules, "a preloaded module imported uvicorn"
    return {key: environ.get(key) for key in read if isinstance(key, str)}  # a bytes key fails as it did when read


# The variables the imports read, and their values: what an oracle's environment must agree with.
READ = _load()


# Read for whether they are set at all (MLflow's telemetry and database helpers ask whether pytest runs them), and set
# to each test's name in the environment the oracles inherit: only their presence is compared.
PRESENCE = {"PYTEST_CURRENT_TEST"}


def stale(env):
    """The variables, among those the preloaded modules read, that `env` sets otherwise (sorted)."""
    if EVERYTHING in READ:
        return [EVERYTHING] if dict(env) != dict(os.environ) else []
    return sorted(key for key, value in READ.items()
                  if ((key in env) != (value is not None) if key in PRESENCE else env.get(key) != value))
