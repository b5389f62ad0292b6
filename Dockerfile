# syntax=docker/dockerfile:1
#
# One image per service, each a target of this file (see docs/deploy.md):
#   docker build --target actions -t order-support-actions .   # python -m bot.server.actions (Rasa only)
#   docker build --target rasa    -t order-support-rasa .      # Rasa server, model baked in, API with token
#   docker build --target gateway -t order-support-gateway .   # python -m gateway
#   docker build --target trainer -t order-support-trainer .   # the bot environment + a trained model
#   docker build --target model --output type=local,dest=var/model .   # just the model file, out
#
# The model is trained in the `trainer` stage by scripts/train.sh itself, so it carries the
# same name (hash of its inputs) as on a developer's machine. To ship a model trained
# elsewhere instead, override the `model` stage with a folder holding that one model:
#   mkdir -p var/model && cp "$(scripts/train.sh)" var/model/
#   docker build --target rasa --build-context model=var/model -t order-support-rasa .
#
# Nothing secret is baked in: tokens, secrets, passwords and DSNs come from the environment
# at run time. Packages come from the lock files only; nothing is downloaded at run time
# (the Japanese dictionary is the unidic-lite package, MeCab is inside the fugashi wheel).

# The bot (Rasa 3.6) is pinned to Python 3.10, whose support ended in October 2026: its
# images run 3.10 until Rasa moves. The gateway runs on a supported Python (3.12).
ARG PYTHON_IMAGE=python:3.10-slim-bookworm
ARG GATEWAY_PYTHON_IMAGE=python:3.12-slim-bookworm

# ---- base: the interpreter, the non-root user, settings shared by every image ----------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8 \
    HOME=/home/app
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/app --shell /usr/sbin/nologin app
WORKDIR /app

# ---- uv: the installer (build stages only; pinned, from PyPI) ----------------------------
FROM base AS uv
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# Use the image's Python (never download one); compiled bytecode makes cold starts faster,
# since the non-root user cannot write .pyc files into the environment at run time.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

# ---- gateway-base: the same user and settings on the gateway's Python -------------------
FROM ${GATEWAY_PYTHON_IMAGE} AS gateway-base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8 \
    HOME=/home/app
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/app --shell /usr/sbin/nologin app
WORKDIR /app

FROM gateway-base AS gateway-uv
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

# ---- bot-env: Rasa + rasa-sdk + fugashi/unidic-lite, exactly requirements/bot.lock -------
FROM uv AS bot-env
COPY requirements/bot.lock requirements/bot.lock
# The same path as on a developer's machine, so scripts/train.sh runs unchanged.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv --python /usr/local/bin/python3.10 /app/.venv-bot \
    && uv pip sync --python /app/.venv-bot/bin/python requirements/bot.lock \
    && /app/.venv-bot/bin/python -c "import fugashi, unidic_lite; fugashi.Tagger()"

# ---- gateway-env: the gateway's environment, exactly requirements/gateway.lock -----------
FROM gateway-uv AS gateway-env
COPY requirements/gateway.lock requirements/gateway.lock
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv --python /usr/local/bin/python3.12 /app/.venv-gateway \
    && uv pip sync --python /app/.venv-gateway/bin/python requirements/gateway.lock

# ---- trainer: trains the model with scripts/train.sh (skipped when the hash is cached) ----
FROM bot-env AS trainer
ENV RASA_TELEMETRY_ENABLED=false \
    MPLCONFIGDIR=/tmp/matplotlib
COPY config.yml domain.yml ./
COPY bot/ bot/
COPY scripts/train.sh scripts/train.sh
# models/ is a build cache mount: like on a developer's machine, a model whose inputs did
# not change is reused. The chosen model is copied out of the cache into the image.
RUN --mount=type=cache,target=/app/models \
    model=$(./scripts/train.sh) \
    && mkdir -p /app/model-out \
    && cp "$model" /app/model-out/
# Run as a container only to look around (the model is in /app/model-out); never as root.
USER 10001:10001

# ---- model: just the trained model file (override with --build-context model=DIR) ------
FROM scratch AS model
COPY --from=trainer /app/model-out/ /

# ---- bot-runtime: what the action server and Rasa share ---------------------------------
FROM base AS bot-runtime
ENV PATH=/app/.venv-bot/bin:$PATH \
    RASA_TELEMETRY_ENABLED=false \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=bot-env /app/.venv-bot /app/.venv-bot
COPY contracts/ contracts/
COPY bot/ bot/
COPY deploy/healthcheck.py deploy/healthcheck.py
# var/ holds the demo SQLite orders file when ORDERS_DATABASE_URL is empty.
RUN mkdir -p /app/var && chown app:app /app/var

# ---- actions: the action server on :5055 ------------------------------------------------
# bot/server/actions.py: rasa_sdk's app that refuses every request but GET /health without
# ACTION_SERVER_TOKEN (Rasa sends it), and does not start without one. It listens on every
# interface of the container only; compose and Kubernetes keep the port on the private
# network (never published).
FROM bot-runtime AS actions
USER 10001:10001
EXPOSE 5055
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py", "http://127.0.0.1:5055/health"]
CMD ["python", "-m", "bot.server.actions", "--actions", "bot.actions", "--interface", "0.0.0.0", "--port", "5055"]

# ---- rasa: the Rasa server on 0.0.0.0:5005 (inside the container only), model baked in ---
FROM bot-runtime AS rasa
COPY credentials.yml ./
COPY deploy/endpoints.redis.yml deploy/endpoints.redis.yml
COPY --chmod=0755 deploy/rasa-entrypoint.sh deploy/rasa-entrypoint.sh
COPY --from=model / /app/models/
USER 10001:10001
EXPOSE 5005
# Loading the model takes a minute on two cores; GET / answers once it is loaded.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py", "http://127.0.0.1:5005/"]
# The entrypoint refuses to start without RASA_TOKEN (the API never runs without one) or
# ACTION_SERVER_TOKEN (the action server refuses Rasa's calls without it).
ENTRYPOINT ["/app/deploy/rasa-entrypoint.sh"]

# ---- gateway: LINE webhook + Slack events on :8080 --------------------------------------
FROM gateway-base AS gateway
ENV PATH=/app/.venv-gateway/bin:$PATH \
    PORT=8080 \
    ATTACHMENTS_DIR=/app/var/attachments
# The rich menu tool ships here too (`python -m gateway.line.rich_menu apply`, what
# `make rich-menu` runs; gateway/rich_menu.yml): it draws the Japanese labels with Debian's
# IPA P Gothic (/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-ipafont-gothic=00303-23 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=gateway-env /app/.venv-gateway /app/.venv-gateway
COPY contracts/ contracts/
COPY gateway/ gateway/
COPY deploy/healthcheck.py deploy/healthcheck.py
# Customer photos are saved here (a volume in compose, a shared volume in Kubernetes).
RUN mkdir -p /app/var/attachments && chown -R app:app /app/var
USER 10001:10001
EXPOSE 8080
# /healthz is 200 only when Rasa and the action server answer: "the bot is ready".
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py", "http://127.0.0.1:8080/healthz"]
CMD ["python", "-m", "gateway"]
