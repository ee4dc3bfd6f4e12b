"""Audio clips for broadcasts, stored by content: the SHA-256 of a clip's bytes is its name.

A clip is a PCM WAV file (8/16-bit, mono or stereo, 8..48 kHz): what espeak-ng writes and what
every loudspeaker payload can decode. Uploaded clips are checked before they are kept; a bad
file gets a :class:`fleet.errors.ValidationError` saying why. Storing the same bytes twice keeps
one copy. Payloads fetch clips over HTTP by their SHA-256 and check it, so a clip cannot change
under a broadcast.

Layout under the store's root::

    clips/ab/abcdef....wav    the audio
    clips/ab/abcdef....json   its metadata (duration, format, where it came from)
    tts/<key>.txt             SHA-256 of the clip rendered for a (text, language, voice, rate)

Files are written to a temporary name and renamed, so a crash never leaves half a clip.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import uuid
import wave
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fleet.errors import NotFound, StreetfleetError, ValidationError
from missions.broadcast.speech import SpeechEngine
from missions.broadcast.voices import DEFAULT_RATE_WPM, Language, Voice

MAX_CLIP_BYTES = 32 * 1024 * 1024
"""Largest clip accepted (about 12 minutes of 22 kHz 16-bit mono)."""
MAX_CLIP_SECONDS = 300.0
"""Longest clip accepted: a broadcast message, not a programme."""
CONTENT_TYPE = "audio/wav"
"""MIME type clips are served with."""


@dataclass(frozen=True)
class Clip:
    """A stored clip."""

    sha256: str
    duration_s: float
    sample_rate: int
    channels: int
    sample_width: int
    """Bytes per sample."""
    size_bytes: int
    source: dict[str, str] = field(default_factory=dict)
    """Where it came from: ``{"kind": "tts", "text": ..., "language": ...}`` or upload info."""
    content_type: str = CONTENT_TYPE


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def inspect_wav(data: bytes) -> tuple[float, int, int, int]:
    """(duration s, sample rate, channels, sample width) of a PCM WAV; ``ValidationError`` if
    it is not one the payloads can play."""
    if len(data) > MAX_CLIP_BYTES:
        raise ValidationError(f"clip larger than {MAX_CLIP_BYTES} bytes", field="clip")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            frames = w.getnframes()
            comp = w.getcomptype()
    except (wave.Error, EOFError) as exc:
        raise ValidationError(f"not a PCM WAV file: {exc}", field="clip") from None
    if comp != "NONE":
        raise ValidationError("only uncompressed PCM WAV is accepted", field="clip")
    if not 8000 <= rate <= 48000 or channels not in (1, 2) or width not in (1, 2):
        raise ValidationError(
            f"unsupported WAV format ({rate} Hz, {channels} channels, {8 * width}-bit): "
            "use 8..48 kHz, mono or stereo, 8 or 16-bit",
            field="clip",
        )
    # espeak-ng's streamed headers claim 2^31 frames; trust the bytes actually present
    available = max(0, len(data) - 44) // (channels * width)
    frames = min(frames, available)
    duration = frames / rate
    if duration <= 0.0:
        raise ValidationError("the clip holds no audio", field="clip")
    if duration > MAX_CLIP_SECONDS:
        raise ValidationError(f"clip longer than {MAX_CLIP_SECONDS:.0f} s", field="clip")
    return duration, rate, channels, width


class ClipStore:
    """Content-addressed clip files under ``root`` (see module docstring)."""

    def __init__(self, root: str | Path, engine: SpeechEngine | None = None) -> None:
        self.root = Path(root)
        self.engine = engine or SpeechEngine()

    def _base(self, sha: str) -> Path:
        if not is_sha256(sha):
            raise NotFound("clip", sha)
        return self.root / "clips" / sha[:2] / sha

    def path(self, sha: str) -> Path:
        """File of a clip's audio (it may not exist)."""
        return self._base(sha).with_suffix(".wav")

    def exists(self, sha: str) -> bool:
        try:
            return self.path(sha).is_file()
        except NotFound:
            return False

    async def put(self, data: bytes, source: Mapping[str, str] | None = None) -> Clip:
        """Check and keep a clip; returns it (the existing one when already stored)."""
        duration, rate, channels, width = inspect_wav(data)
        sha = sha256_hex(data)
        existing = await self._load_meta(sha)
        if existing is not None and self.path(sha).is_file():
            return existing
        clip = Clip(
            sha256=sha,
            duration_s=duration,
            sample_rate=rate,
            channels=channels,
            sample_width=width,
            size_bytes=len(data),
            source=dict(source or {"kind": "upload"}),
        )
        base = self._base(sha)
        await asyncio.to_thread(_write_atomic, base.with_suffix(".wav"), data)
        meta = json.dumps(asdict(clip), ensure_ascii=False, indent=1).encode()
        await asyncio.to_thread(_write_atomic, base.with_suffix(".json"), meta)
        return clip

    async def get(self, sha: str) -> Clip:
        """A stored clip's metadata; ``NotFound`` when there is none."""
        clip = await self._load_meta(sha)
        if clip is None or not self.path(sha).is_file():
            raise NotFound("clip", sha)
        return clip

    async def read(self, sha: str) -> bytes:
        """A stored clip's bytes, checked against its name."""
        await self.get(sha)
        data = await asyncio.to_thread(self.path(sha).read_bytes)
        if sha256_hex(data) != sha:
            raise StreetfleetError(f"clip {sha} is corrupt on disk", sha256=sha)
        return data

    async def _load_meta(self, sha: str) -> Clip | None:
        meta = self._base(sha).with_suffix(".json")
        try:
            raw = await asyncio.to_thread(meta.read_bytes)
        except FileNotFoundError:
            return None
        data: dict[str, Any] = json.loads(raw)
        return Clip(**data)

    async def speak(
        self,
        text: str,
        language: Language,
        voice: Voice = Voice.FEMALE,
        *,
        rate_wpm: int = DEFAULT_RATE_WPM,
    ) -> Clip:
        """The clip of ``text`` spoken by espeak-ng, rendered once and then reused."""
        key_src = json.dumps(
            [text.strip(), str(language), str(voice), rate_wpm], ensure_ascii=False
        ).encode()
        key = hashlib.sha256(key_src).hexdigest()
        index = self.root / "tts" / f"{key}.txt"
        try:
            sha = (await asyncio.to_thread(index.read_text)).strip()
            return await self.get(sha)
        except (FileNotFoundError, NotFound):
            pass
        data = await self.engine.render(text, language, voice, rate_wpm=rate_wpm)
        clip = await self.put(
            data,
            {
                "kind": "tts",
                "text": text.strip(),
                "language": str(language),
                "voice": str(voice),
                "rate_wpm": str(rate_wpm),
            },
        )
        await asyncio.to_thread(_write_atomic, index, clip.sha256.encode())
        return clip


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
