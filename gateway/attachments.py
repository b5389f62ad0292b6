"""Customer attachments (photos of a damaged item): saved under var/attachments/ and listed
per user so a case (and later the Slack handoff card) can show them.

The file is named by the LINE message id; a JSON sidecar beside it records which event and
user it came from. The per-user index lives in Redis when REDIS_URL is set (so another
gateway process or the Slack side can read it), in memory otherwise.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

log = logging.getLogger(__name__)

_EXT = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "audio/m4a": ".m4a",
    "audio/x-m4a": ".m4a",
}
INDEX_TTL_S = 30 * 24 * 3600


class AttachmentStore:
    def __init__(self, directory: Path, redis: Any = None, prefix: str = "gw:line:attachments:") -> None:
        self.directory = Path(directory)
        self._r = redis
        self._prefix = prefix
        self._memory: Dict[str, List[Dict[str, Any]]] = {}

    async def save(
        self, user_id: str, event_id: str, message_id: str, data: bytes, content_type: str
    ) -> Dict[str, Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        safe_id = "".join(ch for ch in message_id if ch.isalnum()) or event_id
        ext = _EXT.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
        path = self.directory / f"{safe_id}{ext}"
        path.write_bytes(data)
        record = {
            "event_id": event_id,
            "message_id": message_id,
            "user_id": user_id,
            "content_type": content_type,
            "size": len(data),
            "path": str(path),
            "saved_at": time.time(),
        }
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(record), encoding="utf-8")
        if self._r is not None:
            key = self._prefix + user_id
            await self._r.rpush(key, json.dumps(record))
            await self._r.expire(key, INDEX_TTL_S)
        else:
            self._memory.setdefault(user_id, []).append(record)
        return record

    async def for_user(self, user_id: str) -> List[Dict[str, Any]]:
        if self._r is not None:
            return [json.loads(x) for x in await self._r.lrange(self._prefix + user_id, 0, -1)]
        return list(self._memory.get(user_id, []))

    async def close(self) -> None:
        if self._r is not None:
            close = getattr(self._r, "aclose", None) or self._r.close
            await close()


def make_attachment_store(directory: Path, redis_url: Optional[str]) -> AttachmentStore:
    if redis_url:
        import redis.asyncio as aioredis

        return AttachmentStore(directory, aioredis.Redis.from_url(redis_url, decode_responses=True))
    return AttachmentStore(directory)
