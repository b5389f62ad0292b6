"""Container health check without curl: exit 0 when the URL answers 200, else 1.

Used by the Dockerfile's HEALTHCHECK and docker-compose.yml (the slim images have no curl).
Standard library only, so it runs with the image's own Python in every target.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def healthy(url: str, timeout_s: float = 4.0) -> bool:
    """True when `url` answers 200 within the timeout."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: healthcheck.py URL")
    sys.exit(0 if healthy(sys.argv[1]) else 1)
