"""The RabbitMQ backend's pure parts (no cluster needed)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ingest.amqp import parse_amqp_urls, routing_key_of, topic_of
from ingest.errors import BrokerUrlError
from nazorat.services.errors import AccountNameError
from nazorat.services.rabbit_provision import DEVICE_TOPIC_WRITE, check_rabbit_device_id, rabbit_password_hash


def test_the_password_hash_is_rabbitmq_s_salted_sha256() -> None:
    salt = b"\x90\x8d\xc6\x0a"
    got = base64.b64decode(rabbit_password_hash("test12", salt))
    assert got[:4] == salt and got[4:] == hashlib.sha256(salt + b"test12").digest()


def test_topics_and_routing_keys_map_both_ways() -> None:
    assert routing_key_of("nazorat/v1/devices/dev-1/fixes") == "nazorat.v1.devices.dev-1.fixes"
    assert topic_of("nazorat.v1.devices.dev-1.fixes.mp") == "nazorat/v1/devices/dev-1/fixes/mp"


@pytest.mark.parametrize("bad", ["a.b", "nazorat-engine", "x/y", "", "$sys"])
def test_device_ids_that_would_break_topics_or_reach_service_accounts_are_refused(bad: str) -> None:
    with pytest.raises(AccountNameError):
        check_rabbit_device_id(bad)


def test_device_topic_permission_uses_the_username_never_the_client_id() -> None:
    assert "{username}" in DEVICE_TOPIC_WRITE and "{client_id}" not in DEVICE_TOPIC_WRITE


def test_amqp_url_lists_are_checked() -> None:
    assert parse_amqp_urls("amqp://u:p@h1:5673/%2F, amqp://u:p@h2:5674/%2F") == [
        "amqp://u:p@h1:5673/%2F", "amqp://u:p@h2:5674/%2F"]
    with pytest.raises(BrokerUrlError):
        parse_amqp_urls("mqtt://h:1883")
    with pytest.raises(BrokerUrlError):
        parse_amqp_urls(" , ")
