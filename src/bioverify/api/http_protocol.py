"""uvicorn's httptools protocol with a limit on the size of a request's head.

httptools (llhttp) has no limit of its own: a client could send a 128 MiB header
and the server would buffer all of it (and every request on that loop slows
down). Bytes are counted from the start of a request until its headers are
complete; past :data:`MAX_HEAD_BYTES` the answer is 431 with the error envelope
and the connection is closed. Put the same or a smaller limit in the reverse
proxy (nginx: ``large_client_header_buffers 4 16k``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Request line plus headers, in bytes.
MAX_HEAD_BYTES: Final = 64 * 1024


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that refuses request heads over ``MAX_HEAD_BYTES``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: a chunk that completes the head (and carries part of
        # the body) is fine; only a head still incomplete past the limit is refused.
        # The parser holds at most the limit plus one read's worth meanwhile.
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next bytes on a kept-alive connection start the next request's head.
        self._in_head = True
        self._head_bytes = 0

    def _refuse_head(self) -> None:
        self._in_head = False  # ignore whatever else arrives before the close
        if self.transport.is_closing():
            return
        body = json.dumps(
            {
                "status": "error",
                "message": f"Request headers are larger than the {MAX_HEAD_BYTES} byte limit",
                "errorCodes": [],
                "requestId": uuid.uuid4().hex,
            }
        ).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()


__all__ = ["MAX_HEAD_BYTES", "LimitedHttpToolsProtocol"]
