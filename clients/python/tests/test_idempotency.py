"""A network failure mid-write, then the SDK's retry, yields exactly one turn: a TCP proxy in front of
the real gateway forwards the first write, waits for the gateway's answer (so the turn is committed)
and then cuts the client's connection without a byte; the SDK retries with the same Idempotency-Key."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from support import unique
from threadline import AsyncThreadline, Threadline


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def _with_connection_close(message: bytes) -> bytes:
    """One exchange per connection: `Connection: close` on the request (and so on the answer)."""
    head, _, body = message.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body


class CuttingProxy:
    """Forwards HTTP/1.1 exchanges to `upstream`; the first request whose line starts with `cut` is
    forwarded and answered upstream, and then its client connection is closed with no answer."""

    def __init__(self, upstream: tuple[str, int], cut: bytes) -> None:
        self.upstream = upstream
        self.cut = cut
        self.cuts = 0
        self.requests: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._exchange, args=(conn,), daemon=True).start()

    def _exchange(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if not request:
                return
            self.requests.append(request)
            with socket.create_connection(self.upstream) as up:
                up.sendall(_with_connection_close(request))
                answer = b""
                while chunk := up.recv(65536):
                    answer += chunk
            if self.cuts == 0 and request.startswith(self.cut):
                self.cuts += 1
                conn.shutdown(socket.SHUT_RDWR)  # the write is done upstream; the client never hears of it
                return
            conn.sendall(answer)

    def close(self) -> None:
        self.server.close()


@pytest.fixture()
def proxy(base_url: str) -> Iterator[CuttingProxy]:
    host, port = base_url.removeprefix("http://").split(":")
    running = CuttingProxy((host, int(port)), cut=b"POST /sessions/")
    yield running
    running.close()


def _keys(proxy: CuttingProxy) -> list[str]:
    keys = []
    for request in proxy.requests:
        for line in request.split(b"\r\n\r\n")[0].split(b"\r\n"):
            if line.lower().startswith(b"idempotency-key:"):
                keys.append(line.split(b":", 1)[1].strip().decode())
    return keys


def test_cut_connection_and_retry_log_one_turn(proxy: CuttingProxy, client: Threadline, api_key: str) -> None:
    session = client.sessions.create(user_id=unique("u"))
    with Threadline(f"http://127.0.0.1:{proxy.port}", api_key=api_key, max_retries=2, max_retry_delay=0.05) as cut:
        turn = cut.turns.log(
            session.session_id, user_input="logged once", agent_responses=[{"agent_name": "a", "response": "r"}]
        )
    assert proxy.cuts == 1, "the first try's answer was cut"
    assert len(proxy.requests) == 2, "the SDK retried once"
    keys = _keys(proxy)
    assert len(keys) == 2 and keys[0] == keys[1], "both tries carried the same Idempotency-Key"
    turns = client.turns.list(session.session_id).to_list()
    assert [t.turn_id for t in turns] == [turn.turn_id], "exactly one turn"
    assert turns[0].user_input == "logged once"


async def test_cut_connection_and_retry_log_one_turn_async(
    proxy: CuttingProxy, client: Threadline, api_key: str
) -> None:
    session = client.sessions.create(user_id=unique("u"))
    async with AsyncThreadline(f"http://127.0.0.1:{proxy.port}", api_key=api_key, max_retry_delay=0.05) as cut:
        turn = await cut.turns.log(session.session_id, user_input="async, once")
    assert proxy.cuts == 1 and len(proxy.requests) == 2
    assert [t.turn_id for t in client.turns.list(session.session_id)] == [turn.turn_id]


def test_without_retries_the_cut_is_raised_and_the_turn_is_there(
    proxy: CuttingProxy, client: Threadline, api_key: str
) -> None:
    """The cut is real: with no retry the caller gets the connection error, yet the turn was logged
    (so an SDK that retried without the same key would have logged two)."""
    from threadline import ThreadlineError

    session = client.sessions.create(user_id=unique("u"))
    with Threadline(f"http://127.0.0.1:{proxy.port}", api_key=api_key, max_retries=0) as cut:
        with pytest.raises(ThreadlineError) as caught:
            cut.turns.log(session.session_id, user_input="answer lost")
    assert caught.value.status is None and caught.value.code == "CONNECTION.FAILED"
    assert [t.user_input for t in client.turns.list(session.session_id)] == ["answer lost"]
