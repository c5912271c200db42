# detbot: the GitHub App server (`detbot serve`) and the CLI.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY checks ./checks
RUN pip install . \
 && useradd --system --uid 10001 --create-home --home-dir /home/detbot detbot

USER detbot
WORKDIR /home/detbot
EXPOSE 8080
CMD ["detbot", "serve"]
