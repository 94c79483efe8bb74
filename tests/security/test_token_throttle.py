"""POST /api/v1/auth/token/ is throttled per user name and per client address, and
refused attempts are logged without the password."""

import logging

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

pytestmark = [pytest.mark.services, pytest.mark.django_db]

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def low_login_rates(monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "login-user", "3/hour")
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "login-ip", "6/hour")


def _from(address: str) -> APIClient:
    return APIClient(REMOTE_ADDR=address)


def _login(client, username, password, **extra):
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


def test_wrong_passwords_then_even_the_right_one_waits(make_user, low_login_rates, caplog):
    make_user("alice"), make_user("bob")
    attacker = _from("203.0.113.7")
    with caplog.at_level(logging.WARNING):
        codes = [_login(attacker, "alice", f"guess-{n}").status_code for n in range(3)]
    assert codes == [400, 400, 400]
    refused = _login(_from("198.51.100.9"), "alice", "pw-alice")  # the right password, from anywhere
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0 and "detail" in refused.json()
    # Another user from another address is not held up by alice's attacker.
    assert _login(_from("198.51.100.10"), "bob", "pw-bob").status_code == 200
    # The user name is one bucket whatever its case or surrounding spaces.
    assert _login(_from("198.51.100.11"), " ALICE ", "pw-alice").status_code == 429

    failures = [r for r in caplog.records if r.name == "config.auth"]
    assert len(failures) == 3
    text = caplog.text
    assert "alice" in text and "203.0.113.7" in text
    assert "guess-" not in text and "pw-alice" not in text


def test_one_address_trying_many_user_names_is_throttled(make_user, low_login_rates):
    make_user("carol")
    attacker = _from("203.0.113.8")
    codes = [_login(attacker, f"user{n}", "x").status_code for n in range(6)]
    assert codes == [400] * 6
    assert _login(attacker, "carol", "pw-carol").status_code == 429
    # A forged X-Forwarded-For does not buy the attacker a fresh address.
    assert _login(attacker, "carol", "pw-carol", HTTP_X_FORWARDED_FOR="192.0.2.55").status_code == 429
    assert _login(_from("198.51.100.12"), "carol", "pw-carol").status_code == 200
