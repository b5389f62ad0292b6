"""Rasa's HTTP API never loads a model from an address that a request supplies.

Rasa 3.6.21's `PUT /model` (and `POST /model/test/intents?model=...`) passes the request's
`model_server` / `remote_storage` on to `load_agent`, which fetches and loads whatever the
address serves: with the API token, a request could make Rasa run a model (and its code)
from anywhere (the class of CVE-2024-49375). This project only ever loads local model
files (make evaluate sends `model_file`), so such requests are refused with 403 before
anything is fetched. Models from a model server configured in the endpoints file (by the
operator, not a request) are untouched: they do not go through this path.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


def install() -> None:
    """Wrap rasa.server._load_agent, which serves both API routes that load a model."""
    import rasa.server

    if getattr(rasa.server, "_model_sources_refused", False):
        return
    original = rasa.server._load_agent

    async def _load_agent(
        model_path: Any = None, model_server: Any = None, remote_storage: Any = None, endpoints: Any = None
    ) -> Any:
        if model_server is not None or remote_storage is not None:
            raise rasa.server.ErrorResponse(
                HTTPStatus.FORBIDDEN,
                "ModelSourceRefused",
                "This server loads only local model files (`model_file`); a model server or "
                "remote storage named in a request is refused.",
                {"parameter": "model_server" if model_server is not None else "remote_storage", "in": "body"},
            )
        return await original(
            model_path=model_path, model_server=model_server, remote_storage=remote_storage, endpoints=endpoints
        )

    rasa.server._load_agent = _load_agent
    rasa.server._model_sources_refused = True
