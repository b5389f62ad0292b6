"""Writes the Rasa endpoints file for this machine from the environment.

Rasa's endpoints.yml can substitute ${VAR} but has no defaults, so the tracker and lock
stores are chosen here:

    REDIS_URL=redis://[:password@]host:port/db   tracker store and lock store on Redis
                                                 (several Rasa servers share conversations;
                                                 the lock store keeps one turn at a time)
    TRACKER_STORE_URL=<SQLAlchemy URL>           tracker store in SQL (sqlite:///var/x.db,
                                                 postgresql://user:pw@host/db)
    neither                                      SQLite file var/trackers.db

Conversations must outlive a restart and be readable by `make review` (scripts/review.py),
so the in-memory tracker store is never the default. The action server is always
${ACTION_SERVER_URL}, called with `Authorization: Bearer ${ACTION_SERVER_TOKEN}` (the
action server refuses requests without it; Rasa substitutes the variable when it reads
the file, so the secret itself is never written here).

    .venv-bot/bin/python -m scripts.endpoints --out var/endpoints.yml
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional
from urllib.parse import unquote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACKER_DB = ROOT / "var" / "trackers.db"


def redis_stores(redis_url: str) -> Dict[str, Any]:
    """Tracker store (db from the URL) and lock store (the next db) on one Redis server."""
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"REDIS_URL must start with redis:// or rediss://, not {parts.scheme!r}")
    db = int((parts.path or "/0").lstrip("/") or 0)
    common: Dict[str, Any] = {"url": parts.hostname or "localhost", "port": parts.port or 6379}
    if parts.password:
        common["password"] = unquote(parts.password)
    if parts.scheme == "rediss":
        common["use_ssl"] = True
    return {
        "tracker_store": {"type": "redis", **common, "db": db, "key_prefix": "tracker"},
        # Rasa's lock store serialises one conversation across Rasa replicas.
        "lock_store": {"type": "redis", **common, "db": db, "key_prefix": "lock"},
    }


def sql_tracker_store(url: str) -> Dict[str, Any]:
    """An SQLAlchemy URL as Rasa's SQL tracker store settings."""
    parts = urlsplit(url)
    dialect = parts.scheme.split("+")[0]
    if dialect == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path:
            raise ValueError("TRACKER_STORE_URL for SQLite must look like sqlite:///path/to/file.db")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"tracker_store": {"type": "SQL", "dialect": "sqlite", "db": path}}
    store: Dict[str, Any] = {
        "type": "SQL",
        "dialect": parts.scheme,
        "url": parts.hostname or "localhost",
        "db": parts.path.lstrip("/"),
    }
    if parts.port:
        store["port"] = parts.port
    if parts.username:
        store["username"] = unquote(parts.username)
    if parts.password:
        store["password"] = unquote(parts.password)
    return {"tracker_store": store}


# Rasa sends these headers with every action call (rasa/utils/endpoints.py EndpointConfig).
ACTION_HEADERS = {"Authorization": "Bearer ${ACTION_SERVER_TOKEN}"}


def endpoints(env: Mapping[str, str]) -> Dict[str, Any]:
    config: Dict[str, Any] = {"action_endpoint": {"url": "${ACTION_SERVER_URL}", "headers": dict(ACTION_HEADERS)}}
    if env.get("REDIS_URL"):
        config.update(redis_stores(env["REDIS_URL"]))
    else:
        url = env.get("TRACKER_STORE_URL") or f"sqlite:///{DEFAULT_TRACKER_DB}"
        config.update(sql_tracker_store(url))
    return config


def write_endpoints(out: Path, env: Optional[Mapping[str, str]] = None) -> Path:
    """Write the endpoints file for `env` (default: this process's environment) to `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by scripts/endpoints.py from the environment; edit that script, not this file.\n"
    out.write_text(header + yaml.safe_dump(endpoints(env if env is not None else os.environ), sort_keys=False))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "endpoints.yml")
    args = parser.parse_args()
    print(write_endpoints(args.out))


if __name__ == "__main__":
    main()
