"""HTTP plumbing: the gateway paths and /_sim/ controls on stdlib http.server, tuned for
keep-alive throughput (the simulator is benchmarked)."""

import json
import logging
import socket
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import control
from .codes import canonical_operation
from .state import Simulator

_log = logging.getLogger(__name__)
_JSON = "application/json; charset=utf-8"
MAX_BODY = 8 * 1024 * 1024  # a full 1000-recipient send is about 30 kB


class GatewayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # a benchmark's burst of new connections must not be refused

    def __init__(self, address: tuple[str, int], simulator: Simulator):
        self.simulator = simulator
        self._open: set[socket.socket] = set()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        sock, address = super().get_request()
        # Without NODELAY a keep-alive client's delayed ACK stalls every answer by ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.simulator.lock:
            self._open.add(sock)
        self.simulator.note_connection()
        return sock, address

    def shutdown_request(self, request) -> None:
        with self.simulator.lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on idle keep-alive clients so their handler threads end with the server."""
        with self.simulator.lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client

    def handle_error(self, request, client_address) -> None:
        # Clients that hang up mid-answer (a timeout while a delay fault runs) are normal.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            _log.exception("simulator connection from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server_version = "ASPSMS-Simulator/1.0"
    sys_version = ""
    wbufsize = 64 * 1024  # headers and body leave in one send(), flushed after each request
    timeout = 300  # an idle keep-alive connection does not hold its thread forever
    server: GatewayHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args) -> None:
        """Silent: a stderr line per request would dominate benchmark time."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        raw = self._read_body()
        if raw is None:
            return
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/_sim/"):
                sim = self.server.simulator
                status, payload, headers = control.handle(sim, method, url.path, url.query, raw)
                self._send(status, _JSON, _dump(payload), headers)
            else:
                self._gateway(method, url.path, raw)
        except (ConnectionError, TimeoutError):
            raise
        except Exception:  # a bug must show up as a 500 in the test, not as a hung client
            _log.exception("simulator failed on %s %s", method, url.path)
            self._send(500, _JSON, _dump({"Message": "Internal simulator error."}))

    def _gateway(self, method: str, path: str, raw: bytes) -> None:
        operation = canonical_operation(path.strip("/"))
        if operation is None:
            return self._send(404, _JSON, _dump({"Message": f"No operation at {path}."}))
        if method != "POST":
            return self._send(405, _JSON, _dump({"Message": "Use POST."}), {"Allow": "POST"})
        sim = self.server.simulator
        fault = sim.begin_call(operation)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.replaces_answer:
                return self._send(*fault.answer())
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return self._send(400, _JSON, _dump({"Message": "The request body is not valid JSON."}))
        self._send(200, _JSON, _dump(sim.call(operation, body)))

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 400/413 (the connection is then closed)."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunks()
            size = int(self.headers.get("Content-Length") or 0)
            if size < 0:
                raise ValueError(size)
        except ValueError:
            return self._refuse_body(400, "Malformed request framing.")
        if size > MAX_BODY:
            return self._refuse_body(413, "Request body too large.")
        return self.rfile.read(size)

    def _read_chunks(self) -> bytes:
        chunks, total = [], 0
        while size := int(self.rfile.readline(1024).split(b";")[0].strip(), 16):
            total += size
            if total > MAX_BODY:
                raise ValueError("chunked body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline(65537).strip():
            pass  # trailer fields, up to the blank line
        return b"".join(chunks)

    def _refuse_body(self, status: int, message: str) -> None:
        self.close_connection = True  # the unread body would desynchronise keep-alive
        self._send(status, _JSON, _dump({"Message": message}))
        return None

    def _send(self, status: int, content_type: str, body: bytes, headers=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _dump(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()
