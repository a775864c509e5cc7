"""The HTTP protocol the companion serves with: uvicorn's httptools protocol with a bound on a request's head.
uvicorn sets none for httptools: a client that never ends a header line made the server buffer it all (200 MB
of one header took 250 MB of memory, unauthenticated, and no answer). Past HEAD_LIMIT bytes of request line
and headers the connection gets a 431 and is closed. Use it as `--http companion.app.core.httpserver:
BoundedHttpTools` (`python -m companion serve` and the test servers do)."""

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_LIMIT = 64 * 1024
SPEC = "companion.app.core.httpserver:BoundedHttpTools"
_BODY = (b'{"type":"https://interlock.example/problems/too-large","title":"too large","status":431,'
         b'"detail":"the request head exceeds ' + str(HEAD_LIMIT).encode() + b' bytes"}')
_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/problem+json\r\n"
              b"connection: close\r\ncontent-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY)


class BoundedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request head grows past HEAD_LIMIT bytes."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head:  # a request began and its headers are not complete: all of this was head
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_LIMIT and not self.transport.is_closing():
                self.transport.write(_TOO_LARGE)
                self.transport.close()

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
