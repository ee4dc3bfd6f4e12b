"""A minimal HTTP/1.1 file server on loopback for tests: serves clips to speaker payloads."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import wave
from types import TracebackType

from missions.broadcast.clips import sha256_hex


def tone_wav(seconds: float, rate: int = 16000, freq: float = 880.0) -> bytes:
    """A mono 16-bit sine tone: a stand-in clip that needs no speech engine."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
                for i in range(n)
            )
        )
    return buf.getvalue()


class ClipServer:
    """Serves ``files`` (path -> bytes) at ``http://127.0.0.1:{port}{path}``; 404 otherwise."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    def add(self, data: bytes, path: str | None = None) -> tuple[str, str]:
        """Serve ``data``; returns (url, sha256)."""
        sha = sha256_hex(data)
        path = path or f"/clips/{sha}.wav"
        self.files[path] = data
        return self.url(path), sha

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> ClipServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode(errors="replace").split()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = request[1] if len(request) >= 2 else "/"
            self.hits.append(path)
            body = self.files.get(path)
            if body is None:
                head = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                writer.write(head)
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
        finally:
            writer.close()
