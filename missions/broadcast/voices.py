"""Languages and voices a broadcast can be spoken in, and how they map onto espeak-ng voices.

espeak-ng (Debian package ``espeak-ng``) names a voice by language and an optional variant:
``cmn+f3`` is Mandarin with the third female variant. The languages streetfleet offers are the
ones a street office in southern China needs and espeak-ng ships (``espeak-ng --voices``):

=========  ============================  ================
language   espeak-ng voice               note
=========  ============================  ================
``cmn``    ``cmn`` (Chinese, Mandarin)   Hanzi read as Putonghua; Latin letters as English
``yue``    ``yue`` (Chinese, Cantonese)  Hanzi read as Cantonese
``en``     ``en-gb`` (English)           British English
``en-us``  ``en-us`` (English)           American English
=========  ============================  ================

Voices are espeak-ng variants: ``male`` is the language's default voice, ``female`` the ``f3``
variant.
"""

from __future__ import annotations

from enum import StrEnum


class Language(StrEnum):
    """Spoken language of a broadcast."""

    MANDARIN = "cmn"
    """Putonghua (普通话)."""
    CANTONESE = "yue"
    """Cantonese (粤语)."""
    ENGLISH = "en"
    """British English."""
    ENGLISH_US = "en-us"
    """American English."""


class Voice(StrEnum):
    """Speaker voice."""

    FEMALE = "female"
    """espeak-ng variant ``f3``."""
    MALE = "male"
    """The language's default espeak-ng voice."""


ESPEAK_LANGUAGE = {
    Language.MANDARIN: "cmn",
    Language.CANTONESE: "yue",
    Language.ENGLISH: "en-gb",
    Language.ENGLISH_US: "en-us",
}
"""espeak-ng voice name of each language."""

ESPEAK_VARIANT = {Voice.FEMALE: "f3", Voice.MALE: None}
"""espeak-ng variant of each voice (None: the language's default)."""

MIN_RATE_WPM = 80
"""Slowest speaking rate, words per minute."""
MAX_RATE_WPM = 260
"""Fastest speaking rate, words per minute."""
DEFAULT_RATE_WPM = 140
"""Announcements are spoken a little slower than espeak-ng's default 175 wpm."""


def espeak_voice(language: Language, voice: Voice) -> str:
    """The ``-v`` argument of espeak-ng for a language and voice."""
    name = ESPEAK_LANGUAGE[language]
    variant = ESPEAK_VARIANT[voice]
    return f"{name}+{variant}" if variant else name


def parse_voice_list(output: str) -> set[str]:
    """Language codes listed by ``espeak-ng --voices`` (column ``Language``)."""
    codes: set[str] = set()
    for line in output.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            codes.add(parts[1].lower())
    return codes
