"""The broker transport keeps one Redis client per channel (config/broker.py) and
still delivers and acknowledges every message, also after kombu replaces its pool."""

import pytest
import redis
from celery import current_app
from django.conf import settings
from kombu import Exchange, Queue

from config.broker import Channel

pytestmark = pytest.mark.services

QUEUE = Queue("tests-broker-transport", Exchange("tests-broker-transport"), routing_key="tests-broker-transport")


@pytest.fixture
def broker():
    with current_app.connection_for_write() as connection:
        channel = connection.default_channel
        QUEUE(channel).declare()
        yield connection, channel
        QUEUE(channel).purge()


def _publish(connection, body: dict) -> None:
    with connection.Producer() as producer:
        producer.publish(body, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key, declare=[QUEUE])


def test_the_apps_broker_uses_the_transport_that_reuses_its_client(broker):
    _connection, channel = broker
    assert settings.CELERY_BROKER_TRANSPORT == "config.broker:Transport"
    assert isinstance(channel, Channel)


def test_publishes_and_acks_share_one_client_and_lose_nothing(broker):
    connection, channel = broker
    for number in range(20):
        _publish(connection, {"n": number})
    client = channel._reused_client[1]

    received = []

    def on_message(body, message):
        received.append(body["n"])
        message.ack()

    with connection.Consumer(QUEUE, accept=["json"], callbacks=[on_message]):
        while len(received) < 20:
            connection.drain_events(timeout=5)

    assert sorted(received) == list(range(20))
    assert channel._reused_client[1] is client  # every publish, delivery and ack used the same client
    unacked = redis.Redis.from_url(settings.CELERY_BROKER_URL).hlen(channel.unacked_key)
    assert unacked == 0  # every ack reached Redis


def test_a_replaced_pool_gets_a_new_client(broker):
    connection, channel = broker
    _publish(connection, {"n": 1})
    old_pool, old_client = channel._reused_client

    channel._after_fork()  # what kombu does in a forked process: the pool is dropped
    _publish(connection, {"n": 2})

    new_pool, new_client = channel._reused_client
    assert new_pool is channel.pool and new_pool is not old_pool
    assert new_client is not old_client
    assert channel._size(QUEUE.name) == 2  # both messages are in the queue
