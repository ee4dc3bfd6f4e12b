"""Text to speech with espeak-ng: a broadcast's text becomes a WAV clip.

espeak-ng runs as a subprocess (``asyncio.create_subprocess_exec``, never a shell), reading the
text from stdin so that no text can be taken for an option, and writing a 16-bit mono PCM WAV
file (22 050 Hz). When espeak-ng is not installed every call raises a
:class:`fleet.errors.ConfigError` naming the Debian package to install (``espeak-ng``, listed in
``scripts/system-packages.txt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fleet.errors import ConfigError, ValidationError
from missions.broadcast.voices import (
    DEFAULT_RATE_WPM,
    ESPEAK_LANGUAGE,
    MAX_RATE_WPM,
    MIN_RATE_WPM,
    Language,
    Voice,
    espeak_voice,
    parse_voice_list,
)

DEBIAN_PACKAGE = "espeak-ng"
"""Debian package providing the speech engine."""
MAX_TEXT_CHARS = 1000
"""Longest text a broadcast may speak (about three minutes of speech)."""
DEFAULT_TIMEOUT_S = 60.0
"""Real seconds a rendering may take before it is abandoned."""


def _missing(executable: str) -> ConfigError:
    return ConfigError(
        f"text to speech needs {executable}, which is not installed: install the Debian "
        f"package {DEBIAN_PACKAGE} (apt-get install {DEBIAN_PACKAGE})",
        package=DEBIAN_PACKAGE,
        executable=executable,
    )


def check_text(text: str) -> str:
    """Validate broadcast text: non-empty, at most :data:`MAX_TEXT_CHARS`, no control characters."""
    cleaned = text.strip()
    if not cleaned:
        raise ValidationError("the message text is empty", field="text")
    if len(cleaned) > MAX_TEXT_CHARS:
        raise ValidationError(f"at most {MAX_TEXT_CHARS} characters", field="text")
    bad = [c for c in cleaned if ord(c) < 32 and c not in "\n\t"]
    if bad:
        raise ValidationError("the text contains control characters", field="text")
    return cleaned


@dataclass(frozen=True)
class SpeechEngine:
    """espeak-ng, found on ``PATH`` or at ``executable``."""

    executable: str = "espeak-ng"
    timeout_s: float = DEFAULT_TIMEOUT_S

    def path(self) -> str:
        """Absolute path of the engine; raises ``ConfigError`` naming the package if absent."""
        found = shutil.which(self.executable)
        if found is None:
            raise _missing(self.executable)
        return found

    def available(self) -> bool:
        return shutil.which(self.executable) is not None

    async def _run(self, *args: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
        exe = self.path()
        try:
            proc = await asyncio.create_subprocess_exec(
                exe,
                *args,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise _missing(self.executable) from None
        try:
            async with asyncio.timeout(self.timeout_s):
                out, err = await proc.communicate(stdin)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise ConfigError(
                f"{self.executable} did not finish within {self.timeout_s} s",
                executable=self.executable,
            ) from None
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out, err

    async def languages(self) -> set[Language]:
        """Languages of :class:`Language` this installation can speak."""
        code, out, err = await self._run("--voices")
        if code != 0:
            raise ConfigError(
                f"{self.executable} --voices failed: {err.decode(errors='replace').strip()}",
                executable=self.executable,
            )
        listed = parse_voice_list(out.decode(errors="replace"))
        return {lang for lang, name in ESPEAK_LANGUAGE.items() if name in listed}

    async def render(
        self,
        text: str,
        language: Language,
        voice: Voice = Voice.FEMALE,
        *,
        rate_wpm: int = DEFAULT_RATE_WPM,
    ) -> bytes:
        """Speak ``text`` into a WAV file and return its bytes."""
        cleaned = check_text(text)
        if not MIN_RATE_WPM <= rate_wpm <= MAX_RATE_WPM:
            raise ValidationError(
                f"speaking rate must be within {MIN_RATE_WPM}..{MAX_RATE_WPM} wpm",
                field="rate_wpm",
            )
        with tempfile.TemporaryDirectory(prefix="streetfleet-tts-") as tmp:
            out_path = Path(tmp) / "speech.wav"
            code, _, err = await self._run(
                "-v",
                espeak_voice(Language(language), Voice(voice)),
                "-s",
                str(rate_wpm),
                "-b",
                "1",  # input is UTF-8
                "-w",
                str(out_path),
                "--stdin",
                stdin=cleaned.encode("utf-8"),
            )
            message = err.decode(errors="replace").strip()
            if code != 0 or not out_path.exists():
                if "voice does not exist" in message:
                    raise ConfigError(
                        f"{self.executable} has no voice for {language} "
                        f"({espeak_voice(Language(language), Voice(voice))}); install the full "
                        f"Debian package {DEBIAN_PACKAGE}",
                        package=DEBIAN_PACKAGE,
                        language=str(language),
                    )
                raise ConfigError(
                    f"{self.executable} failed (exit {code}): {message}",
                    executable=self.executable,
                )
            data = await asyncio.to_thread(out_path.read_bytes)
        if len(data) <= 44:
            raise ConfigError(f"{self.executable} produced no audio", executable=self.executable)
        return data


async def render_speech(
    text: str,
    language: Language,
    voice: Voice = Voice.FEMALE,
    *,
    rate_wpm: int = DEFAULT_RATE_WPM,
    engine: SpeechEngine | None = None,
) -> bytes:
    """Render ``text`` to a WAV clip with espeak-ng (see :class:`SpeechEngine`)."""
    return await (engine or SpeechEngine()).render(text, language, voice, rate_wpm=rate_wpm)
