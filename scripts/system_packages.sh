#!/usr/bin/env bash
# The Debian packages the tests need beside the Python environments, installed when they
# are missing (as root, or with password-less sudo); otherwise this stops at once, naming
# the exact command to run. `make test` calls it first, so a fresh machine does not fail
# minutes later in the middle of a suite.
# (`make run` needs none of them: it keeps the gateway's state in memory and the orders
# in SQLite.)
set -euo pipefail
need=()
command -v make >/dev/null || need+=(make)
# The gateway's tests start a real redis-server (per-user ordering, journal, case state).
command -v redis-server >/dev/null || need+=(redis-server)
# The orders store is also tested against a real PostgreSQL server (ORDERS_TEST_POSTGRES=1).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The deployment checks parse docker-compose.yml with a real compose client (no engine).
command -v docker-compose >/dev/null || need+=(docker-compose)
# The workbench's browser tests drive Debian's Chromium; Japanese fonts make the screenshots readable
# and draw the LINE rich menu's labels (gateway/line/rich_menu.py, make rich-menu: IPA P Gothic).
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list :lang=ja 2>/dev/null | grep -q . || need+=(fonts-ipafont-gothic fonts-noto-color-emoji)
[ ${#need[@]} -eq 0 ] && exit 0

command_line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${need[*]}"
if ! command -v apt-get >/dev/null; then
  echo "system_packages: missing ${need[*]}; this is not a Debian machine: install them with its package manager" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "system_packages: missing ${need[*]}. Run this, then make test again:" >&2
  echo "  sudo sh -c '$command_line'" >&2
  exit 1
fi
echo "system_packages: installing ${need[*]}" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
