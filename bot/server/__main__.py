"""`python -m bot.server run ...` is `rasa run ...` with bot/server/speedups.py installed.

scripts/run.sh, scripts/stack.py (tests, benches) and the Docker image start Rasa this way,
so what is tested and measured is what is deployed.
"""
import sys

from bot.server.speedups import install

install()
from rasa.__main__ import main  # noqa: E402  (after the patch)

sys.argv[0] = "rasa"
sys.exit(main())
