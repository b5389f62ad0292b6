"""Where the orders database is, how to connect to it, and how it gets its demo data.

The default is a SQLite file in `var/` so the demo needs no server; PostgreSQL (or any
SQLAlchemy URL) is chosen with ORDERS_DATABASE_URL.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session

from bot.store.models import Base, Customer
from bot.store.seed import seed_demo_data

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = REPO_ROOT / "var" / "orders.db"
SQLITE_BUSY_TIMEOUT_MS = 5000


def database_url() -> str:
    """ORDERS_DATABASE_URL, or the demo SQLite file (its folder is created on the way)."""
    url = os.environ.get("ORDERS_DATABASE_URL", "").strip()
    if url:
        return url
    DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def make_engine(url: Optional[str] = None) -> Engine:
    """An engine shared by all threads of a process (sessions are opened per call)."""
    url = url or database_url()
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, future=True, pool_pre_ping=True)
    engine = create_engine(url, future=True, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: sqlite3.Connection, connection_record: Any) -> None:
    """WAL lets readers run while a writer commits; the busy timeout makes concurrent
    writers (two action servers, two threads) wait for each other instead of failing."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switching a new file to WAL needs it to itself, and SQLite reports "locked" at once
    (without waiting for the busy timeout) when another process is switching it too; so
    wait here. The mode is kept in the file, so this only ever waits on a fresh database."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def init_db(engine: Engine, now: Optional[datetime] = None) -> None:
    """Creates the tables and seeds the demo data into an empty database, unless
    ORDERS_SEED_DEMO=0 (a production database must never receive the demo customers).

    Idempotent, and safe when two processes start at once: whoever loses a race to create
    a table or to seed sees the winner's work instead of an error.
    """
    _create_tables(engine)
    if os.environ.get("ORDERS_SEED_DEMO", "1") != "0":
        _seed_if_empty(engine, now or datetime.now(timezone.utc))


def _create_tables(engine: Engine) -> None:
    """One table at a time, so that losing the race for one table (another process created
    it between our check and our CREATE) does not stop the others from being created."""
    for table in Base.metadata.sorted_tables:
        try:
            table.create(engine, checkfirst=True)
        except DatabaseError:
            if not inspect(engine).has_table(table.name):
                raise  # a real problem (no permission, bad URL), not a lost race


def _seed_if_empty(engine: Engine, now: datetime) -> None:
    try:
        with Session(engine, future=True) as session, session.begin():
            if session.scalar(select(Customer.id).limit(1)) is None:
                seed_demo_data(session, now)
    except IntegrityError:
        pass  # a concurrent start seeded first (unique LINE ids and order numbers)
