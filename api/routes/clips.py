"""``/v1/clips``: audio clips for broadcasts: upload a WAV, speak a text, preview, and the file
speaker payloads fetch (named by its SHA-256, so it can never change under a broadcast)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import FileResponse

from api.auth import AnyoneDep, RequesterDep
from api.deps import RuntimeDep
from api.problems import problem
from api.schemas import ClipOut, SpeechIn
from fleet.errors import ConfigError
from fleet.store.tables import AuditLog
from missions.broadcast.clips import CONTENT_TYPE, MAX_CLIP_BYTES, Clip
from missions.broadcast.run import clip_url, service_url

router = APIRouter(prefix="/v1/clips", tags=["clips"])

WAV_TYPES = frozenset(
    {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "application/octet-stream"}
)
"""Content types an upload may declare."""


def clip_out(rt: Any, clip: Clip) -> ClipOut:
    return ClipOut(
        sha256=clip.sha256,
        duration_s=round(clip.duration_s, 3),
        sample_rate=clip.sample_rate,
        channels=clip.channels,
        sample_width=clip.sample_width,
        size_bytes=clip.size_bytes,
        source=clip.source,
        url=clip_url(service_url(rt.broadcasts.ctx), clip.sha256),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ClipOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        413: {"description": f"Larger than {MAX_CLIP_BYTES} bytes"},
        415: {"description": "Not declared as WAV"},
        422: {"description": "Not a PCM WAV the payloads can play (the problem says why)"},
    },
)
async def upload_clip(
    request: Request,
    rt: RuntimeDep,
    who: RequesterDep,
    content_type: Annotated[str | None, Header()] = None,
) -> Any:
    """Upload a recorded message: the body is a PCM WAV file (8/16-bit, mono or stereo,
    8..48 kHz, at most 300 s). Use its ``sha256`` as ``message.clip_sha256``."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared and declared not in WAV_TYPES:
        return problem(
            415,
            "unsupported-media-type",
            "UnsupportedMediaType",
            f"upload the clip as {CONTENT_TYPE}, not {declared}",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CLIP_BYTES:
            return problem(
                413, "too-large", "TooLarge", f"a clip is at most {MAX_CLIP_BYTES} bytes"
            )
        chunks.append(chunk)
    meta = {"kind": "upload", "uploaded_by": who.username}
    clip = await rt.broadcasts.clips.put(b"".join(chunks), meta)
    await rt.store.audit(
        AuditLog(
            at=rt.clock.now(),
            actor=who.username,
            action="clip.upload",
            object_type="clip",
            object_id=clip.sha256,
            detail={"size_bytes": clip.size_bytes, "duration_s": round(clip.duration_s, 3)},
        )
    )
    return clip_out(rt, clip)


@router.post(
    "/speech",
    status_code=status.HTTP_201_CREATED,
    response_model=ClipOut,
    responses={503: {"description": "Text to speech is unavailable (espeak-ng missing)"}},
)
async def speak(body: SpeechIn, rt: RuntimeDep, who: RequesterDep) -> Any:
    """Render a text with espeak-ng (the same clip a broadcast of this text will play), to
    listen to it before requesting the broadcast."""
    try:
        clip = await rt.broadcasts.clips.speak(
            body.text, body.language, body.voice, rate_wpm=body.rate_wpm
        )
    except ConfigError as exc:
        return problem(
            503,
            "speech-unavailable",
            "SpeechUnavailable",
            exc.message,
            package=exc.fields.get("package"),
            language=exc.fields.get("language"),
        )
    return clip_out(rt, clip)


@router.get(
    "/{sha256}.wav",
    response_class=FileResponse,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "The clip"}},
)
async def clip_file(sha256: str, rt: RuntimeDep) -> FileResponse:
    """The clip's audio (what payloads fetch and check against its SHA-256)."""
    await rt.broadcasts.clips.get(sha256)
    return FileResponse(
        rt.broadcasts.clips.path(sha256),
        media_type=CONTENT_TYPE,
        headers={
            "ETag": f'"{sha256}"',
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


@router.get("/{sha256}", response_model=ClipOut)
async def clip_info(sha256: str, rt: RuntimeDep, who: AnyoneDep) -> ClipOut:
    """A clip's duration, format and origin."""
    return clip_out(rt, await rt.broadcasts.clips.get(sha256))
