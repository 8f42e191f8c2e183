"""A real HTTP endpoint on 127.0.0.1 for deliveries to reach: `asyncio.start_server`
with just enough HTTP/1.1 to read one request per connection (or, with `keep_alive`,
each request a connection brings) and answer it the way a test says (status, headers,
a delay), recording what arrived byte for byte and over which connection. It can go
down and come back up on the same port, and speak TLS with a given server context."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    # The client's port: requests that share it came over one connection.
    connection: int = 0

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    # Seconds between the bytes of the answer (`drip`: the whole of it; `drip_body`: the
    # body, after a prompt status line and headers), sent one at a time.
    drip: float = 0.0
    drip_body: float = 0.0


Answer = Callable[[Received], Reply]


class Receiver:
    def __init__(self, tls: ssl.SSLContext | None = None, *, keep_alive: bool = False) -> None:
        self.tls = tls
        self.keep_alive = keep_alive
        # Connections the client closed (by their port), once their requests were answered.
        self.closed: list[int] = []
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.requests: list[Received] = []
        self.answer: Answer = lambda _request: Reply()
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()

    def url(self, path: str = "/hook", *, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Connections a client keeps open end with the server, as a real one's do.
            for writer in self._open:
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for(self, count: int, path: str | None = None, seconds: float = 10.0) -> None:
        """Until `count` requests (to `path`) arrived."""

        def enough() -> bool:
            found = self.requests if path is None else self.at(path)
            return len(found) >= count

        async with asyncio.timeout(seconds), self._arrived:
            await self._arrived.wait_for(enough)

    async def wait_closed(self, connection: int, seconds: float = 5.0) -> None:
        """Until the client closed `connection`."""
        async with asyncio.timeout(seconds), self._arrived:
            await self._arrived.wait_for(lambda: connection in self.closed)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = writer.get_extra_info("peername")[1]
        self._open.add(writer)
        try:
            while await self._answer_one(reader, writer, connection) and self.keep_alive:
                pass
        except ConnectionError:
            pass  # the client gave up on a trickling answer
        finally:
            self._open.discard(writer)
            writer.close()

    async def _answer_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int
    ) -> bool:
        """One request and its answer; False when the client closed the connection."""
        request_line = (await reader.readline()).decode("latin-1")
        if not request_line:
            async with self._arrived:
                self.closed.append(connection)
                self._arrived.notify_all()
            return False
        _method, path, _version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        while (line := (await reader.readline()).decode("latin-1")) not in ("\r\n", "\n", ""):
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        received = Received(path, headers, body, time.monotonic(), connection)
        reply = self.answer(received)
        async with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        head = [f"HTTP/1.1 {reply.status} Status", f"Content-Length: {len(reply.body)}"]
        head += [f"{name}: {value}" for name, value in reply.headers.items()]
        if not self.keep_alive:
            head.append("Connection: close")
        answer_head = ("\r\n".join(head) + "\r\n\r\n").encode()
        await _trickle(writer, answer_head, reply.drip)
        await _trickle(writer, reply.body, reply.drip or reply.drip_body)
        return True


async def _trickle(writer: asyncio.StreamWriter, data: bytes, seconds: float) -> None:
    """`data` at once, or a byte every `seconds`."""
    if not seconds:
        writer.write(data)
        await writer.drain()
        return
    for byte in data:
        await asyncio.sleep(seconds)
        writer.write(bytes([byte]))
        await writer.drain()
