"""Run with the check tools' Python (var/deploy-tools): prints the Dockerfile's
instructions as JSON, parsed by BuildKit's own parser (the `dockerfile` package), so the
tests read the file exactly as `docker build` does.

    var/deploy-tools/bin/python tests/deploy/dockerfile_dump.py Dockerfile
"""

from __future__ import annotations

import json
import sys

import dockerfile

if __name__ == "__main__":
    commands = dockerfile.parse_file(sys.argv[1])
    print(
        json.dumps(
            [
                {
                    "cmd": c.cmd.upper(),
                    "flags": list(c.flags),
                    "value": list(c.value),
                    "json": c.json,
                    "line": c.start_line,
                }
                for c in commands
            ]
        )
    )
