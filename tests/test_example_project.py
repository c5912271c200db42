"""Project files: the GitHub App manifest, the Dockerfile, the README's two commands, the bundled data."""
from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT


def test_app_manifest_has_permissions_and_events():
    app = yaml.safe_load((ROOT / "app.yml").read_text())
    assert app["name"] and app["url"].startswith("https://") and app["public"] is False
    assert app["hook_attributes"]["url"].startswith("https://") and app["hook_attributes"]["url"].endswith("/webhook")
    assert app["default_permissions"] == {"checks": "write", "contents": "read", "pull_requests": "write",
                                          "issues": "write", "metadata": "read"}
    assert app["default_events"] == ["pull_request", "issue_comment", "check_run", "check_suite"]


def test_dockerfile_builds_the_package_and_runs_unprivileged():
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(re.match(r"RUN pip install \.", ln) for ln in lines)
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert lines[-2:] == ['ENTRYPOINT ["detbot"]', 'CMD ["serve"]']
    for path in re.findall(r"^COPY (\S+)", "\n".join(lines), re.M):
        assert (ROOT / path).exists(), path


def test_readme_keeps_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/detbot check examples/rules-repo" in readme
    assert "python3 -m venv .venv && .venv/bin/pip install -q '.[test]' && .venv/bin/python -m pytest" in readme


def test_bundled_data_is_packaged():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"data/*"' in pyproject
    for name in ("attack.json", "sigmahq.json"):
        assert (ROOT / "checks" / "data" / name).stat().st_size > 10_000
