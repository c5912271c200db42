# detbot: the GitHub App server (`detbot serve`) and the CLI (`docker run IMAGE check ...`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY checks ./checks
# Every dependency has wheels for linux/amd64 and arm64: no compiler is installed, so none is left behind.
RUN pip install . \
 && useradd --system --uid 10001 --create-home --home-dir /home/detbot detbot

USER 10001
WORKDIR /home/detbot
# DETBOT_LISTEN's default port; change both together.
EXPOSE 8080
# No curl in the slim image: the probe is Python (reads DETBOT_LISTEN; 503 on a dead queue or worker).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "bot.healthcheck"]
ENTRYPOINT ["detbot"]
CMD ["serve"]
