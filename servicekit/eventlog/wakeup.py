"""Wake-ups for the embedded log's consumers (ADR 0020).

A waiting consumer listens on a Unix datagram socket with a random name in Linux's
abstract namespace and records that name, with the topics it reads, in the log file's
`listeners` table. A producer that appends to a topic reads its listeners inside the
append's transaction and, once it has committed, sends each of them one byte. A consumer
therefore sleeps until there is something for it, instead of asking the file every few
milliseconds. A wake-up is only a hint: the consumer still reads the log to see what is
new, and still looks on its own once a second in case one was lost.

Abstract names leave no files behind when a process dies (the kernel frees the name with
the socket) and have no path-length limit tied to where the data directory is. They exist
on Linux only; elsewhere `LISTENING` is false and consumers keep the short poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import socket
import sqlite3
import sys
import weakref
from collections.abc import Iterable, Sequence

LISTENING = sys.platform.startswith("linux")
"""Whether this platform can take wake-ups (abstract Unix socket names are Linux's)."""

LISTENERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS listeners (
    address TEXT NOT NULL,
    topic TEXT NOT NULL,
    PRIMARY KEY (topic, address)
) WITHOUT ROWID;
"""

_NAME_PREFIX = "pbj-eventlog-"
_GONE = frozenset({errno.ECONNREFUSED, errno.ENOENT})


def _socket_address(name: str) -> str:
    return "\0" + name  # a leading NUL puts the name in the abstract namespace


class Listener:
    """One consumer's wake-up socket, registered for the topics it reads."""

    def __init__(self, conn: sqlite3.Connection, topics: Sequence[str]) -> None:
        self.name = _NAME_PREFIX + secrets.token_hex(8)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(_socket_address(self.name))
        except BaseException:
            sock.close()
            raise
        # A bare descriptor, closed with the listener or when it is collected: a consumer
        # that is dropped without close() (as a log reader in a test may be) frees its
        # name as its connection is freed, without a ResourceWarning.
        self._fd = sock.detach()
        self._closed = weakref.finalize(self, os.close, self._fd)
        # Bound before it is registered, and registered before the consumer's first read:
        # a producer that commits after that read finds this row and wakes us.
        conn.executemany(
            "INSERT OR IGNORE INTO listeners (address, topic) VALUES (?, ?)",
            [(self.name, topic) for topic in topics],
        )

    def drain(self) -> None:
        """Forget the wake-ups received so far: the read that follows answers them."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._fd, 64):
                pass

    async def wait(self, timeout: float) -> None:
        """Return when a producer sends a wake-up, or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def readable() -> None:
            if not woken.done():
                woken.set_result(None)

        loop.add_reader(self._fd, readable)
        try:
            await asyncio.wait_for(woken, timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(self._fd)

    def close(self, conn: sqlite3.Connection | None) -> None:
        self._closed()
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("DELETE FROM listeners WHERE address = ?", (self.name,))


class Waker:
    """A producer's side: one byte to every listener of the topics it appended to."""

    def __init__(self) -> None:
        self._socket: socket.socket | None = None

    @staticmethod
    def listeners_of(conn: sqlite3.Connection, topics: Iterable[str]) -> list[str]:
        """Inside the append's transaction, so a listener registered before it is seen."""
        wanted = sorted(set(topics))
        if not LISTENING or not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = conn.execute(
            f"SELECT DISTINCT address FROM listeners WHERE topic IN ({marks})", wanted
        ).fetchall()
        return [str(address) for (address,) in rows]

    def wake(self, names: Sequence[str]) -> list[str]:
        """Send each listener a byte; returns the names nobody listens on any more."""
        gone: list[str] = []
        if not names:
            return gone
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        for name in names:
            try:
                self._socket.sendto(b"\x01", _socket_address(name))
            except BlockingIOError:
                pass  # its queue is full of wake-ups it has not read yet: it will read
            except OSError as err:
                if err.errno in _GONE:
                    gone.append(name)  # its process ended without closing the consumer
        return gone

    @staticmethod
    def forget(conn: sqlite3.Connection, names: Sequence[str]) -> None:
        """Drop listeners whose process is gone; the records are committed whatever happens
        here, so a failure is left for the next producer to retry."""
        if names:
            with contextlib.suppress(sqlite3.Error):
                conn.executemany("DELETE FROM listeners WHERE address = ?", [(n,) for n in names])

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
