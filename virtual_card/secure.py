"""Simulated FeliCa secure messaging: key diversification, mutual authentication proofs and MACs.

**This is a simulation, documented as such.** FeliCa Standard's real algorithms (DES/AES mutual
authentication, encrypted Read/Write) are not public. This module keeps their *shape*: challenges
from both sides, a session key, a MAC on every authenticated read and write, a sequence number
against replay; it uses AES-128 and AES-CMAC (NIST SP 800-38B) through ``cryptography``.
Every byte layout and test vector is in ``docs/protocol.md``; the card (``card.py``) and the host
(``host.py``) both use only the functions below, so they cannot drift apart.

- Card key: ``K_card = CMAC(K_master, 01 || "KMT" || system_code(2, BE) || IDm(8) || key_version(1))``
- Session key: ``SK = CMAC(K_card, 02 || Rh(16) || Rc(16))``
- Card proof (Auth1 response): ``CMAC(SK, 03 || IDm || Rh || Rc)``
- Host proof (Auth2 command): ``CMAC(SK, 04 || IDm || Rc || Rh)``
- Card confirmation (Auth2 response): ``CMAC(SK, 05 || IDm || Rh)``
- Frame MAC (14-17): first 8 bytes of ``CMAC(SK, 06 || unsigned frame)``
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from .frames import MAC_SIZE
from .types import KMT_SYSTEM_CODE

KEY_SIZE = 16

TAG_CARD_KEY = 0x01
TAG_SESSION_KEY = 0x02
TAG_CARD_PROOF = 0x03
TAG_HOST_PROOF = 0x04
TAG_CONFIRMATION = 0x05
TAG_FRAME_MAC = 0x06


def cmac(key: bytes, message: bytes) -> bytes:
    """AES-CMAC of ``message`` under a 16-byte key."""
    c = CMAC(algorithms.AES128(key))
    c.update(message)
    return c.finalize()


def diversify_card_key(
    master_key: bytes, idm: bytes, *, system_code: int = KMT_SYSTEM_CODE, key_version: int = 1
) -> bytes:
    """The card's own key, derived from the issuer's master key and the card's IDm."""
    if len(master_key) != KEY_SIZE:
        raise ValueError(f"master key must be {KEY_SIZE} bytes, got {len(master_key)}")
    message = bytes([TAG_CARD_KEY]) + b"KMT" + system_code.to_bytes(2, "big") + idm + bytes([key_version])
    return cmac(master_key, message)


def session_key(card_key: bytes, host_challenge: bytes, card_challenge: bytes) -> bytes:
    return cmac(card_key, bytes([TAG_SESSION_KEY]) + host_challenge + card_challenge)


def card_proof(sk: bytes, idm: bytes, host_challenge: bytes, card_challenge: bytes) -> bytes:
    return cmac(sk, bytes([TAG_CARD_PROOF]) + idm + host_challenge + card_challenge)


def host_proof(sk: bytes, idm: bytes, host_challenge: bytes, card_challenge: bytes) -> bytes:
    return cmac(sk, bytes([TAG_HOST_PROOF]) + idm + card_challenge + host_challenge)


def confirmation(sk: bytes, idm: bytes, host_challenge: bytes) -> bytes:
    return cmac(sk, bytes([TAG_CONFIRMATION]) + idm + host_challenge)


def frame_mac(sk: bytes, unsigned: bytes) -> bytes:
    """The 8-byte MAC carried by authenticated Read/Write commands and responses."""
    return cmac(sk, bytes([TAG_FRAME_MAC]) + unsigned)[:MAC_SIZE]


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of proofs and MACs."""
    return hmac.compare_digest(a, b)
