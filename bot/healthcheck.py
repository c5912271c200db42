"""`python -m bot.healthcheck`: the container's HEALTHCHECK (the slim image has no curl). GETs /healthz on the
address `detbot serve` listens on (DETBOT_LISTEN) and exits 0 when it answers 200, 1 otherwise."""
from __future__ import annotations

import os
import sys
import urllib.request

from .settings import Settings, parse_listen

# Shorter than the Dockerfile's HEALTHCHECK --timeout, so a hung server is reported by us, not killed.
TIMEOUT = 4.0


def probe_url(listen: str | None) -> str:
    host, port = parse_listen(listen) if listen and parse_listen(listen) else (Settings.host, Settings.port)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"


def main() -> int:
    url = probe_url(os.environ.get("DETBOT_LISTEN", "").strip() or None)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:   # noqa: S310 -- our own address
            print(response.read().decode(errors="replace"))
            return 0 if response.status == 200 else 1
    except Exception as e:  # noqa: BLE001 -- HTTP 503, refused, timed out: unhealthy, and why
        print(f"unhealthy: {url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
