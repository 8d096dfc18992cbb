"""Envelope encryption of personal details: a data key per person, wrapped by a master key.

A person's details are sealed with AES-256-GCM under their own data key; the data key is
stored only wrapped (AES-256-GCM under the service's master key). Destroying the wrapped
data key crypto-shreds every copy of the sealed details at once: the event log, Kafka,
the audit chain and backups keep ciphertext nobody can open (ADR 0011).

The associated data binds each ciphertext to its place (council, person, record), so a
sealed value copied onto another person's record fails to open rather than leaking.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per message, never reused with a key
MASTER_KEY_FILE = "personal-data-master.key"


class SealingError(RuntimeError):
    """A sealed value or a wrapped key that does not open: wrong key, or tampered."""


def _encrypt(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def _decrypt(key: bytes, sealed: bytes, associated: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
    except (InvalidTag, ValueError) as err:
        raise SealingError("the sealed value does not open with this key") from err


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def seal(data_key: bytes, document: dict[str, Any], associated: str) -> str:
    """The document as base64 of nonce + ciphertext + tag."""
    plaintext = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(_encrypt(data_key, plaintext, associated.encode())).decode("ascii")


def unseal(data_key: bytes, sealed: str, associated: str) -> dict[str, Any]:
    raw = _decrypt(data_key, base64.b64decode(sealed), associated.encode())
    document: dict[str, Any] = json.loads(raw)
    return document


class MasterKey:
    """The key that wraps every person's data key; it never wraps anything else."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the master key must be {KEY_BYTES} bytes, not {len(key)}")
        self._key = key

    def wrap(self, data_key: bytes, associated: str) -> bytes:
        return _encrypt(self._key, data_key, associated.encode())

    def unwrap(self, wrapped: bytes, associated: str) -> bytes:
        return _decrypt(self._key, wrapped, associated.encode())

    @classmethod
    def from_base64(cls, text: str) -> MasterKey:
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError as err:
            raise ValueError("the master key must be base64 of 32 random bytes") from err
        return cls(key)

    @classmethod
    def from_file(cls, path: Path) -> MasterKey:
        """The development key file, made (owner-only) on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii"))
        return cls.from_base64(path.read_text().strip())
