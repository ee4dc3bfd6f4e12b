"""Event texts as libevents renders them: an event's message and description with its arguments.

libevents' ``ParsedEvent::processMessage`` rules (as the C++ parser QGroundControl uses applies
them), for the definitions of :mod:`.event_metadata`:

* ``{N}`` is argument N (1-based), ``{N:.D}`` a float with D decimals, and a unit may follow
  (``{1m}``, ``{2:.1m_v}``, ``m/s``, ``m^2``, ``C``): printed after the value with a space,
  ``m_v`` as ``m``; enums print no unit. Floats without decimals print like C++ streams (six
  significant digits).
* Tags: ``<profile name="dev">..</profile>`` keeps its content only for that profile
  (``name="!dev"``: for every other profile); ``<param>NAME</param>`` becomes NAME;
  ``<a href="URL">text</a>`` becomes text (the URL without ``href``); unknown tags are removed
  with their content. ``\\`` escapes the next character (``\\<``, ``\\{``).
* Text between tags and arguments passes through an escape function (identity here: the service
  renders plain text, not HTML), and the result is trimmed. The service renders the ``normal``
  profile, so developer-only text is dropped.

A wire module: pure functions, no I/O, nothing of the service.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware_bridges.mavlink.wire.event_metadata import ArgumentDef

PROFILE_NORMAL = "normal"
"""The profile operators see: ``<profile name="dev">`` content is dropped."""
PROFILE_DEV = "dev"
"""libevents' default profile (developer texts included)."""

Value = int | float
"""A decoded argument."""


def _identity(text: str) -> str:
    return text


def _find_unescaped(text: str, chars: str, start: int) -> int:
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in chars:
            return i
        i += 1
    return -1


def _float_default(value: float) -> str:
    """A float as a C++ ostream prints it by default (six significant digits)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:g}"


def format_argument(value: Value, arg: ArgumentDef, decimals: int, unit: str) -> str:
    """One argument as libevents prints it (``decimals`` < 0: not given)."""
    if arg.enum is not None:
        return arg.enum.display(int(value))
    if arg.base_type == "float":
        text = f"{value:.{decimals}f}" if decimals >= 0 else _float_default(float(value))
    else:
        text = str(int(value))
    if unit:
        text += " " + ("m" if unit == "m_v" else unit)
    return text


def process_message(
    template: str,
    values: tuple[Value, ...],
    arguments: tuple[ArgumentDef, ...],
    profile: str = PROFILE_NORMAL,
    *,
    escape: Callable[[str], str] = _identity,
    param: Callable[[str], str] = _identity,
    url: Callable[[str, str], str] = lambda content, _url: content,
) -> str:
    """Expand a message or description template (see the module docs for the rules)."""
    ret = template
    escape_start = 0

    def escape_previous(text: str, up_to: int) -> tuple[str, int]:
        if escape_start == up_to:
            return text[:escape_start], 0
        escaped = text[:escape_start] + escape(text[escape_start:up_to])
        return escaped, len(escaped) - up_to

    i = 0
    while i < len(ret):
        c = ret[i]
        if c == "\\":
            ret = ret[:i] + ret[i + 1 :]  # drop the backslash, keep the next character as is
        elif c == "<":
            tag_end = _find_unescaped(ret, "> ", i)
            content_start = _find_unescaped(ret, ">", i)
            if tag_end < 0 or content_start < 0:
                i += 1
                continue
            tag = ret[i + 1 : tag_end]
            closing = ret.find(f"</{tag}>", tag_end)
            if closing < 0:
                i += 1
                continue
            content = ret[content_start + 1 : closing]
            arg_name = arg_value = ""
            if ret[tag_end] == " ":
                attrs = ret[tag_end + 1 : content_start]
                equal = attrs.find('="')
                if equal >= 0:
                    end = _find_unescaped(attrs, '"', equal + 2)
                    if end >= 0:
                        arg_name, arg_value = attrs[:equal], attrs[equal + 2 : end]
            skip = 0
            if tag == "param":
                content = param(escape(content))
                skip = len(content)
            elif tag == "a":
                target = arg_value if arg_value and arg_name == "href" else content
                content = url(escape(content), target)
                skip = len(content)
            elif tag == "profile":
                if arg_name == "name" and arg_value:
                    if arg_value.startswith("!"):
                        if profile == arg_value[1:]:
                            content = ""
                    elif profile != arg_value:
                        content = ""
            else:
                content = ""  # unknown tag: removed with its content
            head, diff = escape_previous(ret, i)
            ret = head + content + ret[closing + len(tag) + 3 :]
            i = i + skip + diff  # profile content is parsed further, formatted text is not
            escape_start = i
            continue
        elif c == "{":
            end = ret.find("}", i)
            if end < 0:
                i += 1
                continue
            spec = ret[i + 1 : end]
            digits = 0
            while digits < len(spec) and spec[digits].isdigit():
                digits += 1
            index = int(spec[:digits]) - 1 if digits else -1
            if not 0 <= index < len(arguments) or index >= len(values):
                i += 1
                continue
            pos = digits
            decimals = -1
            if pos < len(spec) and spec[pos] == ":":
                pos += 1
                if pos < len(spec) and spec[pos] == ".":
                    start = pos + 1
                    pos = start
                    while pos < len(spec) and spec[pos].isdigit():
                        pos += 1
                    decimals = int(spec[start:pos]) if pos > start else 0
            text = format_argument(values[index], arguments[index], decimals, spec[pos:])
            head, diff = escape_previous(ret, i)
            ret = head + text + ret[end + 1 :]
            i += len(text) + diff
            escape_start = i
            continue
        i += 1
    ret, _ = escape_previous(ret, len(ret))
    return ret.strip()
