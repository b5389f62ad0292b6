"""`python -m bot.server run ...` is `rasa run ...` with bot/server/speedups.py (a measured
speed-up) and bot/server/hardening.py (no model loaded from a request-supplied address).

devkit/stack.py (make run, the tests, the benches) and the Docker image start Rasa this way,
so what is tested and measured is what is deployed.
"""

import sys

from bot.server import hardening, speedups

speedups.install()
hardening.install()
from rasa.__main__ import main  # noqa: E402  (after the patch)

sys.argv[0] = "rasa"
sys.exit(main())
