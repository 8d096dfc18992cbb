"""The Kafka adapter keeps the same contract as the embedded log, on a real broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner

from servicekit.eventlog import OutgoingRecord, open_event_log
from servicekit.eventlog.kafka import KafkaEventLog
from tests.event_log_contract import EventLogContract, drain


@pytest.mark.kafka
class TestKafkaEventLog(EventLogContract):
    @pytest.fixture
    async def log(self, kafka_bootstrap: str) -> AsyncIterator[KafkaEventLog]:
        event_log = KafkaEventLog(kafka_bootstrap)
        await event_log.start()
        yield event_log
        await event_log.close()

    def partition_of(self, log: KafkaEventLog, key: str) -> int:
        # Kafka's own partitioner, the one every Kafka client shares.
        partitions = list(range(log.partitions))
        return int(DefaultPartitioner()(key.encode(), partitions, partitions))

    async def drop_topic(self, log: KafkaEventLog, topic: str) -> None:
        # The broker keeps everything forever: leave no test topics behind.
        await delete_topic(log.bootstrap, topic)


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


@pytest.mark.kafka
async def test_a_kafka_url_opens_the_kafka_log(kafka_bootstrap: str):
    log = open_event_log(f"kafka://{kafka_bootstrap}")
    assert isinstance(log, KafkaEventLog)
    assert not await log.ready()
    await log.start()
    try:
        assert await log.ready()
    finally:
        await log.close()
    assert not await log.ready()


@pytest.mark.kafka
async def test_topics_are_created_once_with_infinite_retention(kafka_bootstrap: str):
    log = KafkaEventLog(kafka_bootstrap, partitions=3)
    topic = f"pbj-test-{uuid.uuid4().hex[:12]}"
    await log.start()
    try:
        await log.ensure_topics([topic])
        await log.ensure_topics([topic])  # a second service starting: nothing to do
        await log.publish([OutgoingRecord(topic, "P1", b"1")])
        consumer = log.consumer(f"g-{topic}", [topic])
        try:
            assert len(await drain(consumer, expect=1)) == 1
            assert len(await consumer.end_offsets()) == 3
        finally:
            await consumer.close()
    finally:
        await log.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": None})]
        )
    finally:
        await admin.close()
        await delete_topic(kafka_bootstrap, topic)
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert configs["retention.ms"] == "-1"


async def test_a_consumer_is_built_without_touching_the_broker():
    # Services build consumers before the broker is up; only poll() may wait or fail.
    log = KafkaEventLog("127.0.0.1:1")
    consumer = log.consumer("g", ["pb.t"])
    await consumer.close()
    with pytest.raises(RuntimeError, match="not started"):
        await log.publish([OutgoingRecord("pb.t", "P1", b"1")])


async def test_start_fails_cleanly_while_the_broker_is_down():
    # The runtime retries start() until the broker is up: a failed try must leave no
    # half-open producer behind (an unclosed one would warn, and warnings fail tests).
    log = KafkaEventLog("127.0.0.1:1")
    with pytest.raises(KafkaConnectionError):
        await log.start()
    assert not await log.ready()
    await log.close()


@pytest.mark.kafka
async def test_two_namespaces_on_one_cluster_never_see_each_others_events(kafka_bootstrap: str):
    first = open_event_log(f"kafka://{kafka_bootstrap}?namespace=ns{uuid.uuid4().hex[:8]}")
    second = open_event_log(f"kafka://{kafka_bootstrap}?namespace=ns{uuid.uuid4().hex[:8]}")
    for log in (first, second):
        await log.start()
        await log.ensure_topics(["pb.shared"])
    try:
        await first.publish([OutgoingRecord("pb.shared", "P1", b"first's")])
        await second.publish([OutgoingRecord("pb.shared", "P1", b"second's")])
        reader = second.consumer("g", ["pb.shared"])
        records = []
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            records = await reader.poll(timeout_ms=1000)
        await reader.close()
        assert [(r.topic, r.value) for r in records] == [("pb.shared", b"second's")]
    finally:
        for log in (first, second):
            await log.close()


def test_an_unknown_kafka_url_option_is_refused():
    with pytest.raises(ValueError, match="only namespace"):
        open_event_log("kafka://127.0.0.1:9092?retention=1")
