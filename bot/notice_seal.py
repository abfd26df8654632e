"""Sealing a LINE user id for the notice sender (issue 17, docs/notices.md).

Pushing a notice to a LINE resident needs their LINE user id, which the assistant otherwise
only keeps as a keyed pseudonym. The LINE channel seals the id to the sender's public key and
puts the result into the message's metadata; the action server passes it on to the consent
service, which stores it for subscribed residents only. Only the sender
(`python -m consent_service send-notices`, the one holder of `NOTICE_PRIVATE_KEY`) can open it.

    sealed = base64url_nopad(eph_pub(32) || nonce(12) || AES-256-GCM(key, nonce, user id, aad))
    key = HKDF-SHA256(X25519(eph_priv, recipient_pub), salt=eph_pub || recipient_pub,
                      info=b"funabashi-notice-v1", length=32)

A fresh ephemeral key and nonce for every seal: two seals of one id never look alike, so the
sealed value tells nobody who wrote which messages.
"""

from __future__ import annotations

import base64
import binascii
import os

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

CONTEXT = b"funabashi-notice-v1"
KEY_BYTES = 32
NONCE_BYTES = 12


def b64url(raw: bytes) -> str:
    """base64url without padding, as the contract writes keys and sealed values."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without its padding.

    Raises:
        ValueError: `text` is not base64url.
    """
    if not isinstance(text, str) or any(c in text for c in "+/ \n"):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


def public_key_bytes(public_key_b64: str) -> bytes:
    """The 32 raw bytes of a public key written as base64url.

    Raises:
        ValueError: it is not base64url of exactly 32 bytes.
    """
    raw = b64url_decode(public_key_b64.strip())
    if len(raw) != KEY_BYTES:
        raise ValueError("a notice key is 32 bytes")
    return raw


def derive_key(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    """The AES-256-GCM key of one seal (HKDF-SHA256 over the X25519 shared secret)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=eph_pub + recipient_pub, info=CONTEXT
    ).derive(shared)


def seal(user_id: str, public_key_b64: str) -> str:
    """Seal a LINE user id so that only the holder of the private key can read it.

    Args:
        user_id: The LINE user id (never logged).
        public_key_b64: `NOTICE_PUBLIC_KEY`, base64url of 32 bytes.

    Returns:
        base64url_nopad(ephemeral public key || nonce || ciphertext with its tag).

    Raises:
        ValueError: the key is not 32 bytes of base64url.
    """
    recipient_pub = public_key_bytes(public_key_b64)
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_pub))
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(derive_key(shared, eph_pub, recipient_pub)).encrypt(
        nonce, user_id.encode("utf-8"), CONTEXT
    )
    return b64url(eph_pub + nonce + sealed)


def generate_keypair() -> tuple[str, str]:
    """A new key pair for the sender.

    Returns:
        (private, public), each base64url_nopad of 32 raw bytes.
    """
    private = X25519PrivateKey.generate()
    return private_b64(private), public_from_private(private_b64(private))


def private_b64(private: X25519PrivateKey) -> str:
    """A private key's 32 raw bytes as base64url."""
    return b64url(private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))


def public_from_private(private_key_b64: str) -> str:
    """The public key (base64url) that belongs to a private key (base64url).

    Raises:
        ValueError: the private key is not 32 bytes of base64url.
    """
    raw = b64url_decode(private_key_b64.strip())
    if len(raw) != KEY_BYTES:
        raise ValueError("a notice key is 32 bytes")
    public = X25519PrivateKey.from_private_bytes(raw).public_key()
    return b64url(public.public_bytes(Encoding.Raw, PublicFormat.Raw))
