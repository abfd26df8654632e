"""Sealing LINE user ids to the sender's public key (docs/notices.md).

sealed = base64url_nopad(eph_pub(32) || nonce(12) || AES-256-GCM(key, nonce, user_id, aad))
key = HKDF-SHA256(X25519(eph_priv, recipient_pub), salt=eph_pub || recipient_pub, info=INFO)

The LINE channel seals (Rasa side, `bot/notice_seal.py`, with NOTICE_PUBLIC_KEY); the consent
service only stores the sealed value; only `send-notices` opens it (NOTICE_PRIVATE_KEY). Sealing
is randomised (a fresh ephemeral key each time), so equal ids give unequal sealed values.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

INFO = b"funabashi-notice-v1"
AAD = b"funabashi-notice-v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16


class SealError(ValueError):
    """A key or a sealed value that is malformed or does not open."""


def b64encode(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """The bytes of base64url text with or without padding.

    Raises:
        SealError: When the text is not base64url.
    """
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise SealError("not base64url") from error


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _key_bytes(text: str, what: str) -> bytes:
    raw = b64decode(text.strip())
    if len(raw) != _KEY_BYTES:
        raise SealError(f"the {what} key must be 32 bytes (base64url)")
    return raw


def _derive(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=eph_pub + recipient_pub, info=INFO
    ).derive(shared)


def generate_keypair() -> tuple[str, str]:
    """A new X25519 key pair.

    Returns:
        (private, public), each base64url without padding of the 32 raw bytes.
    """
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return b64encode(raw_private), b64encode(_raw_public(private.public_key()))


def public_key_of(private_key_b64: str) -> str:
    """The public key (base64url) of a private key (base64url)."""
    private = X25519PrivateKey.from_private_bytes(_key_bytes(private_key_b64, "private"))
    return b64encode(_raw_public(private.public_key()))


def seal(user_id: str, public_key_b64: str) -> str:
    """Seal a LINE user id to the sender's public key (the LINE channel does this; tests too).

    Args:
        user_id: The raw LINE user id.
        public_key_b64: NOTICE_PUBLIC_KEY.

    Returns:
        The sealed value (base64url without padding).
    """
    recipient_pub = _key_bytes(public_key_b64, "public")
    ephemeral = X25519PrivateKey.generate()
    eph_pub = _raw_public(ephemeral.public_key())
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_pub))
    key = _derive(shared, eph_pub, recipient_pub)
    nonce = os.urandom(_NONCE_BYTES)
    return b64encode(eph_pub + nonce + AESGCM(key).encrypt(nonce, user_id.encode("utf-8"), AAD))


def open_sealed(sealed: str, private_key_b64: str) -> str:
    """Open a sealed LINE user id (only `send-notices` holds the private key).

    Args:
        sealed: The sealed value.
        private_key_b64: NOTICE_PRIVATE_KEY.

    Returns:
        The raw LINE user id.

    Raises:
        SealError: When the value is malformed or was not sealed to this key.
    """
    private = X25519PrivateKey.from_private_bytes(_key_bytes(private_key_b64, "private"))
    raw = b64decode(sealed.strip())
    if len(raw) < _KEY_BYTES + _NONCE_BYTES + _TAG_BYTES:
        raise SealError("the sealed value is too short")
    eph_pub, nonce, box = (
        raw[:_KEY_BYTES],
        raw[_KEY_BYTES : _KEY_BYTES + _NONCE_BYTES],
        raw[_KEY_BYTES + _NONCE_BYTES :],
    )
    shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    key = _derive(shared, eph_pub, _raw_public(private.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, box, AAD).decode("utf-8")
    except (InvalidTag, UnicodeDecodeError) as error:
        raise SealError("the sealed value does not open with this key") from error
