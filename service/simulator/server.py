"""SimulatorServer: a Simulator served over HTTP, and `run` for the command line."""

import signal
import threading
import time
from collections.abc import Callable

from .handler import GatewayHTTPServer
from .state import Simulator

# A wildcard bind address is not something a client can connect to; show loopback instead.
_REACHABLE = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


class SimulatorServer:
    """A `Simulator` served over HTTP: `.start()` in a daemon thread or `.serve_forever()`."""

    def __init__(
        self,
        userkey: str = "SIMUSER",
        password: str = "simpass",
        credits=1000,
        *,
        repeat_verify_code: str = "1",
        authorized_originators=(),
        clock: Callable[[], float] = time.time,
        notification_delay: float = 0.05,
        callback_timeout: float = 2.0,
    ):
        self.state = Simulator(
            userkey,
            password,
            credits,
            repeat_verify_code=repeat_verify_code,
            authorized_originators=authorized_originators,
            clock=clock,
            notification_delay=notification_delay,
            callback_timeout=callback_timeout,
        )
        self._httpd: GatewayHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "SimulatorServer":
        """Listen on host:port (0 = any free port) and serve in a daemon thread."""
        httpd = self._bind(host, port)
        # A short poll interval keeps stop() fast (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"aspsms-simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self, host: str = "127.0.0.1", port: int = 0, announce=None) -> None:
        """Serve in the calling thread until interrupted; `announce(url)` once listening."""
        httpd = self._bind(host, port)
        if announce is not None:
            announce(self.url)
        try:
            httpd.serve_forever()
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving, hang up on open connections, end the notification threads."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._address is None:
            raise RuntimeError("the simulator has not been started")
        return self._address[1]

    @property
    def url(self) -> str:
        """`http://127.0.0.1:54321`: the base URL to give an ASPSMS client."""
        host = _REACHABLE.get(self._host(), self._host())
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def __enter__(self) -> "SimulatorServer":
        return self if self._httpd is not None else self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _host(self) -> str:
        if self._address is None:
            raise RuntimeError("the simulator has not been started")
        return self._address[0]

    def _bind(self, host: str, port: int) -> GatewayHTTPServer:
        if self._httpd is not None:
            raise RuntimeError("the simulator is already running")
        self._httpd = GatewayHTTPServer((host, port), self.state)
        self._address = self._httpd.server_address[:2]
        return self._httpd

    def _close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.close_connections()
            httpd.server_close()
        self.state.close()


def run(port: int, userkey: str = "SIMUSER", password: str = "simpass", credits=1000) -> None:
    """Foreground simulator for `aspsms-verify simulator`: one line with the URL, then serve
    until Ctrl-C or SIGTERM."""
    server = SimulatorServer(userkey, password, credits)
    previous = _interrupt_on_sigterm()
    try:
        server.serve_forever(
            "127.0.0.1",
            port,
            announce=lambda url: print(
                f"ASPSMS simulator listening on {url} (userkey {userkey})", flush=True
            ),
        )
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt_on_sigterm():
    """Make SIGTERM end serve_forever like Ctrl-C (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
