"""`detbot serve` settings an operator gets wrong: each is one problem naming its variable, found at start (not at
the first webhook), and no secret is echoed back."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.settings import Settings, SettingsError
from tests.fakegithub import app_keypair


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "app.pem"
    path.write_bytes(app_keypair()[0])
    return {"DETBOT_APP_ID": "1", "DETBOT_PRIVATE_KEY_FILE": str(path), "DETBOT_WEBHOOK_SECRET": "s"}


def problem(env: dict) -> str:
    with pytest.raises(SettingsError) as exc:
        Settings.from_env(env)
    assert len(exc.value.problems) == 1, exc.value.problems
    return exc.value.problems[0]


def test_private_keys_that_would_fail_at_the_first_jwt(base, tmp_path):
    binary, garbled, ec_key = tmp_path / "app.der", tmp_path / "garbled.pem", tmp_path / "ec.pem"
    binary.write_bytes(b"\x30\x82\x04\xa4\xff\xfe")
    garbled.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----\n")
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert "not a PEM file" in problem({**base, "DETBOT_PRIVATE_KEY_FILE": str(binary)})
    assert "cannot be decoded" in problem({**base, "DETBOT_PRIVATE_KEY_FILE": str(garbled)})
    assert "not an RSA key" in problem({**base, "DETBOT_PRIVATE_KEY_FILE": str(ec_key)})
    assert "No such file" in problem({**base, "DETBOT_PRIVATE_KEY_FILE": str(tmp_path / "missing.pem")})
    inline = {k: v for k, v in base.items() if k != "DETBOT_PRIVATE_KEY_FILE"}
    text = problem({**inline, "DETBOT_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\\nAAAA\\n-----END"})
    assert text.startswith("DETBOT_PRIVATE_KEY does") and "AAAA" not in text


@pytest.mark.parametrize("app_id", ["²", "0", "-1", "12a"])
def test_app_id_must_be_a_positive_ascii_number(base, app_id):
    assert problem({**base, "DETBOT_APP_ID": app_id}).startswith("DETBOT_APP_ID")


@pytest.mark.parametrize("listen", ["::1", "a b:80", "h:٣", "h:0", "[not-ip]:80"])
def test_bad_listen_addresses(base, listen):
    assert problem({**base, "DETBOT_LISTEN": listen}).startswith("DETBOT_LISTEN")


def test_listen_addresses(base):
    for listen, address in (("[::]:8080", ("::", 8080)), (":9000", ("0.0.0.0", 9000)),
                            ("10.0.0.1:80", ("10.0.0.1", 80))):
        s = Settings.from_env({**base, "DETBOT_LISTEN": listen})
        assert (s.host, s.port) == address


@pytest.mark.parametrize("url,api", [
    ("https://ghe.example.com", "https://ghe.example.com/api/v3"),
    ("https://ghe.example.com/", "https://ghe.example.com/api/v3"),
    ("https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3"),
    ("https://ghe.example.com:8443/api/v3/", "https://ghe.example.com:8443/api/v3"),
    ("https://github.com", "https://api.github.com"),
    ("https://api.github.com/", "https://api.github.com"),
])
def test_github_url_is_the_rest_api_root(base, url, api):
    assert Settings.from_env({**base, "DETBOT_GITHUB_URL": url}).github_url == api


def test_bad_github_urls_are_named_without_credentials(base):
    for url in ("https://", "ghe.example.com", "https://ghe:port/api/v3"):
        assert problem({**base, "DETBOT_GITHUB_URL": url}).startswith("DETBOT_GITHUB_URL")
    text = problem({**base, "DETBOT_GITHUB_URL": "https://x:ghp_secret@ghe.example.com/api/v3"})
    assert "credentials" in text and "ghp_secret" not in text


@pytest.mark.parametrize("queue", ["reddis://:hunter2@r:6379/0", "redis://:hunter2@r:port/0",
                                   "redis://:hunter2@r:6379/x", "redis://:hunter2@/0", "redis:r"])
def test_bad_queue_urls_are_named_without_the_password(base, queue):
    text = problem({**base, "DETBOT_QUEUE": queue})
    assert text.startswith("DETBOT_QUEUE") and "hunter2" not in text


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers(base, value):
    assert problem({**base, "DETBOT_JOB_TIMEOUT": value}).startswith("DETBOT_JOB_TIMEOUT")


async def test_an_unreachable_alert_store_is_named_without_its_password():
    from checks.kpi.store import StoreError, open_store
    with pytest.raises(StoreError) as exc:
        await open_store("postgresql://bob:hunter2@127.0.0.1:1/alerts")
    assert "127.0.0.1:1/alerts" in str(exc.value) and "hunter2" not in str(exc.value)


def test_check_config_validates_without_starting_and_prints_no_secret(base, monkeypatch, capsys):
    import argparse

    from bot.commands.serve import main
    env = {**base, "DETBOT_WEBHOOK_SECRET": "whsec-hunter2", "DETBOT_QUEUE": "redis://:hunter2@127.0.0.1:1/0",
           "DETBOT_ALERT_STORE": "postgresql://bob:hunter2@db/alerts"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argparse.Namespace(check_config=True)) == 0     # Redis at port 1 is never contacted
    out = capsys.readouterr()
    assert "configuration complete" in out.out and "redis://127.0.0.1:1/0" in out.out
    assert "hunter2" not in out.out + out.err and "PRIVATE" not in out.out + out.err
