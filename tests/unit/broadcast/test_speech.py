"""Text to speech with the real espeak-ng, and the clip store."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import pytest

from fleet.errors import ConfigError, NotFound, ValidationError
from missions.broadcast.clips import ClipStore, inspect_wav, sha256_hex
from missions.broadcast.speech import SpeechEngine, render_speech
from missions.broadcast.voices import Language, Voice


@pytest.fixture
def espeak(espeak_ng: str) -> SpeechEngine:
    """The real espeak-ng (skipped with the reason when absent; fails under CI=true)."""
    return SpeechEngine()


def files_under(root: Path, pattern: str = "*") -> list[str]:
    return sorted(p.name for p in root.rglob(pattern))


def wav_bytes(seconds: float, rate: int = 16000, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack("<h", 0) * int(seconds * rate) * channels)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("今天下午三点在篮球场做核酸检测,请带好身份证。", Language.MANDARIN),
        ("今日下晝三點喺籃球場做核酸,記得帶身份證。", Language.CANTONESE),
        ("Testing at the basketball court at three p.m. Bring your ID card.", Language.ENGLISH),
        ("Testing at three p.m.", Language.ENGLISH_US),
    ],
)
async def test_espeak_speaks_each_language(
    espeak: SpeechEngine, text: str, language: Language
) -> None:
    data = await espeak.render(text, language, Voice.FEMALE)
    duration, rate, channels, width = inspect_wav(data)
    assert (rate, channels, width) == (22050, 1, 2)
    # a sentence takes seconds to say, not milliseconds, not minutes
    assert 1.0 < duration < 20.0
    with wave.open(io.BytesIO(data)) as w:
        samples = w.readframes(10_000_000)
    assert any(b != 0 for b in samples)  # not silence


async def test_installed_languages_include_the_offered_ones(espeak: SpeechEngine) -> None:
    assert set(Language) <= await espeak.languages()


async def test_text_is_never_taken_for_an_option(espeak: SpeechEngine) -> None:
    # a text starting with dashes is spoken, not parsed as an espeak-ng option
    data = await espeak.render("--help -v xx", Language.ENGLISH, Voice.MALE)
    assert inspect_wav(data)[0] > 0.5


async def test_slower_speech_is_longer(espeak: SpeechEngine) -> None:
    text = "Please stay at home and wait for the volunteers."
    slow = inspect_wav(await espeak.render(text, Language.ENGLISH, rate_wpm=100))[0]
    fast = inspect_wav(await espeak.render(text, Language.ENGLISH, rate_wpm=220))[0]
    assert slow > 1.5 * fast


async def test_missing_engine_names_the_debian_package() -> None:
    engine = SpeechEngine(executable="espeak-ng-not-installed-here")
    with pytest.raises(ConfigError) as err:
        await render_speech("hello", Language.ENGLISH, engine=engine)
    assert err.value.fields["package"] == "espeak-ng"
    assert "apt-get install espeak-ng" in str(err.value)
    assert not engine.available()


async def test_bad_text_and_rate_are_refused_before_running_anything() -> None:
    engine = SpeechEngine(executable="espeak-ng-not-installed-here")
    with pytest.raises(ValidationError):
        await engine.render("  ", Language.ENGLISH)
    with pytest.raises(ValidationError):
        await SpeechEngine().render("hi", Language.ENGLISH, rate_wpm=1000)


async def test_clip_store_keeps_clips_by_content(tmp_path: Path) -> None:
    store = ClipStore(tmp_path)
    data = wav_bytes(2.5)
    clip = await store.put(data, {"kind": "upload", "name": "notice.wav"})
    assert clip.sha256 == sha256_hex(data)
    assert clip.duration_s == pytest.approx(2.5)
    assert (clip.sample_rate, clip.channels, clip.sample_width) == (16000, 1, 2)
    again = await store.put(data)
    assert again == clip  # stored once, metadata kept
    assert await store.read(clip.sha256) == data
    assert (await store.get(clip.sha256)).source["name"] == "notice.wav"
    assert store.exists(clip.sha256)
    # a second store on the same directory sees it (metadata on disk)
    assert (await ClipStore(tmp_path).get(clip.sha256)).duration_s == pytest.approx(2.5)
    with pytest.raises(NotFound):
        await store.get("00" * 32)
    with pytest.raises(NotFound):
        await store.get("../../etc/passwd")
    assert not store.exists("not-a-sha")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"ID3\x03\x00 this is an mp3",
        b"RIFF\x00\x00\x00\x00WAVE",
        wav_bytes(0.0),
        wav_bytes(1.0, rate=96000),
        wav_bytes(301.0, rate=8000),
    ],
)
async def test_bad_uploads_are_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ValidationError) as err:
        await ClipStore(tmp_path).put(data)
    assert err.value.fields["field"] == "clip"
    assert not files_under(tmp_path, "*.wav")


async def test_corrupt_clip_on_disk_is_detected(tmp_path: Path) -> None:
    store = ClipStore(tmp_path)
    clip = await store.put(wav_bytes(1.0))
    store.path(clip.sha256).write_bytes(wav_bytes(1.1))
    with pytest.raises(Exception, match="corrupt"):
        await store.read(clip.sha256)


async def test_spoken_clips_are_rendered_once(espeak: SpeechEngine, tmp_path: Path) -> None:
    store = ClipStore(tmp_path, espeak)
    first = await store.speak("请戴好口罩", Language.MANDARIN)
    assert first.source["kind"] == "tts" and first.source["language"] == "cmn"
    files = files_under(tmp_path)
    second = await store.speak("请戴好口罩", Language.MANDARIN)
    assert second == first
    assert files_under(tmp_path) == files
    other = await store.speak("请戴好口罩", Language.CANTONESE)
    assert other.sha256 != first.sha256
