"""Clips of the simulated speaker payload: fetch one over HTTP and check it before playing it.

``clip_load`` (``docs/protocols/speaker.md``) names a URL and the clip's SHA-256: the payload
downloads at most :data:`MAX_CLIP_BYTES` (:func:`fetch_clip`), checks the checksum and that the
bytes are PCM WAV with some audio in them (:func:`check_clip`), and keeps the :class:`Clip`.
The :class:`ClipError` of a failed check carries the protocol's result and code.
"""

from __future__ import annotations

import hashlib
import io
import wave
from dataclasses import dataclass

import httpx

from firmware_bridges.speaker import wire

MAX_CLIP_BYTES = 64 * 1024 * 1024
"""Largest clip the payload downloads."""
WAV_HEADER_BYTES = 44
"""Size of a canonical WAV header: a file shorter than its header says holds this less audio."""


@dataclass
class Clip:
    """The clip a payload holds."""

    sha256: str
    duration_s: float
    size_bytes: int


class ClipError(Exception):
    """A fetched clip the payload refuses, with the reply's result and code."""

    def __init__(self, result: wire.Result, code: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.code = code
        self.reason = reason


async def fetch_clip(url: str, timeout_s: float) -> bytes:
    """The bytes at ``url``; raises ``httpx.HTTPError`` or ``ValueError`` (too large)."""
    async with (
        httpx.AsyncClient(timeout=timeout_s) as client,
        client.stream("GET", url) as resp,
    ):
        resp.raise_for_status()
        chunks = []
        size = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > MAX_CLIP_BYTES:
                raise ValueError(f"clip larger than {MAX_CLIP_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def check_clip(body: bytes, sha256: str) -> Clip:
    """The clip in ``body`` if it has the SHA-256 announced and is playable WAV audio."""
    digest = hashlib.sha256(body).hexdigest()
    if digest != sha256:
        raise ClipError(
            wire.Result.CHECKSUM_MISMATCH, "checksum_mismatch", f"expected {sha256}, got {digest}"
        )
    try:
        with wave.open(io.BytesIO(body), "rb") as w:
            frames = w.getnframes()
            rate = w.getframerate()
            width, channels = w.getsampwidth(), w.getnchannels()
        frames = min(frames, max(0, len(body) - WAV_HEADER_BYTES) // max(1, width * channels))
        duration = frames / rate
        if duration <= 0:
            raise wave.Error("no audio")
    except (wave.Error, EOFError) as exc:
        raise ClipError(wire.Result.BAD_AUDIO, "bad_audio", str(exc)) from None
    return Clip(digest, duration, len(body))
