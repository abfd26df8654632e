"""Sealing LINE user ids for the notice sender (issue 17, bot/notice_seal.py).

The sealed value is opened here by a small inline copy of the sender's open function, written
from the contract (the two sides never import each other): if the Rasa side sealed anything
else, the backend's sender could not read it.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Dict

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from bot.notice_seal import generate_keypair, public_from_private, seal
from bot.settings import Settings
from scripts import init_env

USER = "U4af4980629b7c5b8d4c1f5e2a7c9e0d1"


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def open_sealed(sealed: str, private_key_b64: str) -> str:
    """The contract's open: eph_pub(32) || nonce(12) || AES-256-GCM, key from X25519 + HKDF."""
    raw = _decode(sealed)
    eph_pub, nonce, box = raw[:32], raw[32:44], raw[44:]
    private = X25519PrivateKey.from_private_bytes(_decode(private_key_b64))
    mine = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=eph_pub + mine, info=b"funabashi-notice-v1"
    ).derive(shared)
    return AESGCM(key).decrypt(nonce, box, b"funabashi-notice-v1").decode("utf-8")


def test_the_sender_opens_what_the_channel_sealed() -> None:
    private, public = generate_keypair()
    sealed = seal(USER, public)
    assert open_sealed(sealed, private) == USER
    assert "=" not in sealed and "+" not in sealed and "/" not in sealed
    assert USER not in sealed


def test_sealing_is_randomised() -> None:
    _, public = generate_keypair()
    assert seal(USER, public) != seal(USER, public)


def test_another_key_cannot_open_it() -> None:
    _, public = generate_keypair()
    other, _ = generate_keypair()
    with pytest.raises(InvalidTag):
        open_sealed(seal(USER, public), other)


def test_a_changed_byte_is_refused() -> None:
    private, public = generate_keypair()
    raw = bytearray(_decode(seal(USER, public)))
    raw[-1] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidTag):
        open_sealed(tampered, private)


def test_keys_are_32_bytes_of_base64url() -> None:
    private, public = generate_keypair()
    assert len(_decode(private)) == len(_decode(public)) == 32
    assert public_from_private(private) == public


@pytest.mark.parametrize("bad", ["short", "A" * 42 + "!", base64.b64encode(b"x" * 31).decode()])
def test_a_wrong_key_fails_at_start(bad: str) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, notice_public_key=bad)
    with pytest.raises(ValueError):
        seal(USER, bad)


def test_the_setting_takes_a_real_key_and_empty_means_none() -> None:
    _, public = generate_keypair()
    assert Settings(_env_file=None, notice_public_key=public).notice_public_key == public
    assert Settings(_env_file=None, notice_public_key="").notice_public_key is None
    assert Settings(_env_file=None).notice_public_key is None


def _values(path: Path) -> Dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines())
    return {k: v for k, v in (p for p in pairs if len(p) == 2) if not k.startswith("#")}


def test_make_run_writes_a_working_key_pair(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    init_env.main(path)
    values = _values(path)
    sealed = seal(USER, values["NOTICE_PUBLIC_KEY"])
    assert open_sealed(sealed, values["NOTICE_PRIVATE_KEY"]) == USER
    again = path.read_text(encoding="utf-8")
    init_env.main(path)
    assert path.read_text(encoding="utf-8") == again  # a pair is kept, never replaced


def test_an_older_env_gains_a_pair_and_a_lone_private_key_its_public_key(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("CONSENT_API_TOKEN=kept\n", encoding="utf-8")
    init_env.main(path)
    values = _values(path)
    assert values["CONSENT_API_TOKEN"] == "kept"
    assert public_from_private(values["NOTICE_PRIVATE_KEY"]) == values["NOTICE_PUBLIC_KEY"]
    private, public = generate_keypair()
    path.write_text(f"NOTICE_PRIVATE_KEY={private}\nNOTICE_PUBLIC_KEY=\n", encoding="utf-8")
    init_env.main(path)
    values = _values(path)
    assert values["NOTICE_PRIVATE_KEY"] == private
    assert values["NOTICE_PUBLIC_KEY"] == public
