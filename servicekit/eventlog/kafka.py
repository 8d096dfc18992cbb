"""The event log on Apache Kafka (aiokafka): the production engine behind the same protocol.

Records are keyed by the person's id and partitioned by Kafka's own partitioner (murmur2),
so any other Kafka client producing the same key lands in the same partition and one
person's events keep their order whoever wrote them. (The embedded log uses CRC32: each
engine is consistent with itself, and nothing depends on the two agreeing.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    CommitFailedError,
    IllegalStateError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    for_code,
)

from servicekit.eventlog.base import Consumer, OutgoingRecord, Record

log = structlog.get_logger(__name__)

DEFAULT_PARTITIONS = 6
# aiokafka retries a batch for as long as the partition's leader is known, which while the
# broker is down means for ever: publish() gives up after this and the caller retries.
DEFAULT_PUBLISH_TIMEOUT_SECONDS = 30.0
# ready() trusts a broker answer this recent; older than that it asks again.
_FRESH_SECONDS = 10.0
_ASSIGNMENT_TIMEOUT_SECONDS = 60.0


class KafkaEventLog:
    def __init__(
        self,
        bootstrap: str,
        partitions: int = DEFAULT_PARTITIONS,
        *,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT_SECONDS,
        namespace: str = "",
    ) -> None:
        self.bootstrap = bootstrap
        # A namespace prefixes every topic and group id, so several systems (a test run, a
        # training copy) can share one cluster without reading each other's events.
        self.prefix = f"{namespace}." if namespace else ""
        self.partitions = partitions
        self.publish_timeout = publish_timeout
        self._producer: AIOKafkaProducer | None = None
        self._answered_at = 0.0

    async def start(self) -> None:
        if self._producer is not None:
            return
        # Idempotence makes the broker drop a batch the producer retried after a lost ack,
        # so a retry inside one publish() never duplicates or reorders a record.
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all"
        )
        try:
            await producer.start()
        except BaseException:
            # start() is retried until the broker is up: leave nothing half-open behind.
            await producer.stop()
            raise
        self._producer = producer
        self._answered_at = time.monotonic()

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def ready(self) -> bool:
        if self._producer is None:
            return False
        if time.monotonic() - self._answered_at < _FRESH_SECONDS:
            return True
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 3)
        except Exception:
            return False
        self._answered_at = time.monotonic()
        return True

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await admin.start()
            metadata = await admin.describe_cluster()
            # aiokafka speaks CreateTopics v3, which cannot say "the broker's default"
            # replication factor: take three copies where the cluster has three brokers.
            replication = min(3, len(metadata["brokers"]))
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=self.prefix + topic,
                        num_partitions=self.partitions,
                        replication_factor=replication,
                        # The log is the system of record: never delete a record by age.
                        topic_configs={"retention.ms": "-1"},
                    )
                    for topic in topics
                ]
            )
            for topic, code, message in response.topic_errors:
                error = for_code(code)
                if code and error is not TopicAlreadyExistsError:
                    raise error(f"creating topic {topic}: {message}")
        finally:
            await admin.close()
        self._answered_at = time.monotonic()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if not records:
            return
        if self._producer is None:
            raise RuntimeError("event log is not started")
        # Send everything first so records batch together, then wait for every ack: the
        # outbox marks rows published once this returns, so returning early could lose one.
        deliveries = [
            await self._producer.send(
                self.prefix + record.topic,
                record.value,
                key=record.key.encode("utf-8"),
                headers=list(record.headers.items()),
            )
            for record in records
        ]
        done, pending = await asyncio.wait(deliveries, timeout=self.publish_timeout)
        for delivery in pending:
            # Not cancelled: the producer may still deliver them, which at-least-once
            # allows. Fetching the outcome later keeps asyncio from logging it as lost.
            delivery.add_done_callback(lambda f: f.cancelled() or f.exception())
        errors = [e for f in done if not f.cancelled() and (e := f.exception()) is not None]
        if errors:
            raise errors[0]
        if pending:
            raise KafkaTimeoutError(
                f"{len(pending)} of {len(records)} records not acknowledged "
                f"within {self.publish_timeout}s"
            )
        self._answered_at = time.monotonic()

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        return KafkaConsumer(self.bootstrap, group_id, list(topics), prefix=self.prefix)


class _AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned = asyncio.Event()

    def on_partitions_revoked(self, revoked: object) -> None:
        self.assigned.clear()

    def on_partitions_assigned(self, assigned: object) -> None:
        self.assigned.set()


class KafkaConsumer:
    """One member of a consumer group; it reads the partitions the group assigns it."""

    def __init__(
        self, bootstrap: str, group_id: str, topics: list[str], *, prefix: str = ""
    ) -> None:
        self._bootstrap = bootstrap
        self._prefix = prefix
        self._group_id = prefix + group_id
        self._topics = [prefix + topic for topic in topics]
        self._consumer: AIOKafkaConsumer | None = None
        self._listener = _AssignmentListener()
        self._commit_in_flight: asyncio.Task[None] | None = None

    async def _started(self) -> AIOKafkaConsumer:
        # Built on first use: aiokafka needs a running loop, and EventConsumer builds its
        # consumer before the broker may be up, so construction must never block.
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=self._group_id,
                # The caller commits only after its own transaction: at-least-once.
                enable_auto_commit=False,
                # A new group reads the whole history, as the embedded log does.
                auto_offset_reset="earliest",
            )
            self._listener = _AssignmentListener()
            consumer.subscribe(self._topics, listener=self._listener)
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def _assigned(self) -> tuple[AIOKafkaConsumer, set[TopicPartition]]:
        await self.finish_commit()
        # A seek before the group has assigned partitions would silently move nothing.
        consumer = await self._started()
        await asyncio.wait_for(self._listener.assigned.wait(), _ASSIGNMENT_TIMEOUT_SECONDS)
        return consumer, set(consumer.assignment())

    async def poll(self, max_records: int = 500, timeout_ms: int = 1000) -> list[Record]:
        self._raise_if_commit_failed()
        consumer = await self._started()
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [
            Record(
                topic=message.topic.removeprefix(self._prefix),
                partition=message.partition,
                offset=message.offset,
                key=(message.key or b"").decode("utf-8"),
                value=message.value or b"",
                timestamp_ms=message.timestamp,
                headers=dict(message.headers),
            )
            for messages in batches.values()
            for message in messages
        ]

    async def commit(self, records: Sequence[Record]) -> None:
        if not records:
            return
        highest: dict[TopicPartition, int] = {}
        for record in records:
            slot = TopicPartition(self._prefix + record.topic, record.partition)
            highest[slot] = max(highest.get(slot, -1), record.offset)
        consumer = await self._started()
        # The broker's answer takes a round trip. The caller has already committed its own
        # transaction, so nothing is lost if this offset commit is late or fails (the
        # records come again and the inbox drops them): it runs while the caller fetches
        # and applies the next records. Commits stay in order (each waits for the one
        # before it), and a failed one is raised by the next commit, poll or close.
        await self.finish_commit()
        # Explicit offsets: only what the caller has applied, not whatever was fetched.
        self._commit_in_flight = asyncio.create_task(
            self._commit_offsets(consumer, {slot: offset + 1 for slot, offset in highest.items()})
        )

    async def _commit_offsets(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
    ) -> None:
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as err:
            # The group moved these partitions to another member while they were being
            # applied (another instance started or stopped). That member reads them again
            # from the last committed offset and its inbox drops what was applied here.
            # Failing would make this member leave and rejoin the group, which moves the
            # partitions again: every member's commits would fail in turn.
            log.info("offsets_not_committed_after_rebalance", group=self._group_id, error=str(err))

    async def finish_commit(self) -> None:
        """Wait for the offset commit in flight, if any; raise its error."""
        in_flight, self._commit_in_flight = self._commit_in_flight, None
        if in_flight is not None:
            await in_flight

    def _raise_if_commit_failed(self) -> None:
        in_flight = self._commit_in_flight
        if in_flight is not None and in_flight.done():
            self._commit_in_flight = None
            in_flight.result()

    async def seek_to_beginning(self) -> None:
        consumer, partitions = await self._assigned()
        if partitions:
            await consumer.seek_to_beginning(*partitions)

    async def seek_to_time(self, timestamp_ms: int) -> dict[tuple[str, int], int]:
        consumer, partitions = await self._assigned()
        found = await consumer.offsets_for_times({tp: timestamp_ms for tp in partitions})
        ends = await consumer.end_offsets(list(partitions)) if partitions else {}
        positions: dict[tuple[str, int], int] = {}
        for tp in partitions:
            at = found[tp].offset if found.get(tp) is not None else ends[tp]
            consumer.seek(tp, at)
            positions[(tp.topic.removeprefix(self._prefix), tp.partition)] = at
        return positions

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        consumer, partitions = await self._assigned()
        ends = await consumer.end_offsets(list(partitions))
        return {
            (tp.topic.removeprefix(self._prefix), tp.partition): offset
            for tp, offset in ends.items()
        }

    async def close(self) -> None:
        try:
            await self.finish_commit()
        except Exception as err:  # the records come again and the inbox drops them
            log.warning("offset_commit_failed_at_close", group=self._group_id, error=str(err))
        finally:
            if self._consumer is not None:
                consumer, self._consumer = self._consumer, None
                await consumer.stop()
