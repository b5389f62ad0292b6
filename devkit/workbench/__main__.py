"""python -m devkit.workbench --port 8093 --gateway URL --line-emulator URL --slack-emulator URL

Secrets come from the same environment as the gateway's: LINE_CHANNEL_SECRET,
SLACK_SIGNING_SECRET, SLACK_HANDOFF_CHANNEL; the cases and quality pages read the action
server's and the gateway's ops APIs with OPS_API_TOKEN (--action-server, default
ACTION_SERVER_URL without its /webhook, or http://127.0.0.1:5055; --gateway).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import List, Optional

from aiohttp import web

from devkit.workbench.app import Settings, action_server_base, make_app


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devkit.workbench", description=__doc__.split("\n\n")[1])
    p.add_argument("--host", default="127.0.0.1", help="keep it local: the page acts for customers and agents")
    p.add_argument("--port", type=int, default=int(os.environ.get("WORKBENCH_PORT", 8093)))
    p.add_argument("--gateway", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080"))
    p.add_argument("--line-emulator", default=os.environ.get("LINE_API_BASE_URL", "http://127.0.0.1:8091"))
    p.add_argument(
        "--slack-emulator",
        default="http://127.0.0.1:8092",
        help="the Slack emulator's root URL (…/api/ is accepted too)",
    )
    p.add_argument(
        "--action-server",
        default=None,
        help="the action server's root URL, for its ops API (default: ACTION_SERVER_URL, or http://127.0.0.1:5055)",
    )
    p.add_argument("--review-csv", type=Path, help="default results/review/review.csv")
    p.add_argument("--evaluate-dir", type=Path, help="default results/evaluate/latest")
    p.add_argument("--bot-python", type=Path, help="default .venv-bot/bin/python")
    p.add_argument("--review-script", type=Path, help="default scripts/review.py")
    p.add_argument("--import-script", type=Path, help="default scripts/import_review.py")
    p.add_argument(
        "--import-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra argument for the import script (repeatable; tests give --nlu-dir=COPY)",
    )
    p.add_argument("--poll-ms", type=int, default=700)
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    settings = Settings.from_env(
        gateway_url=args.gateway,
        action_server_url=action_server_base(args.action_server) if args.action_server else None,
        line_emulator_url=args.line_emulator,
        slack_emulator_url=args.slack_emulator,
        review_csv=args.review_csv,
        evaluate_dir=args.evaluate_dir,
        bot_python=args.bot_python,
        review_script=args.review_script,
        import_script=args.import_script,
        import_args=args.import_arg,
        poll_ms=args.poll_ms,
    )
    print(f"workbench on http://{args.host}:{args.port}/", flush=True)
    # no access log: URLs carry no customer text, but the log would only be noise here
    web.run_app(make_app(settings), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
