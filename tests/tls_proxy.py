"""A TLS front for a plain-HTTP server on loopback, with a throwaway CA (trustme).

Tests point the harness at `url` (https) while the simulator behind it speaks plain
HTTP.  Counts handshakes that completed and the bytes of request heads it saw, so a
test can prove that a client refusing the certificate sent nothing (its key included).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import trustme


class TlsFront:
    def __init__(self, backend_port: int, workdir: Path) -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = workdir / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.context)
        self.backend_port = backend_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handshakes = 0
        self.failed_handshakes = 0
        self.seen = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.failed_handshakes += 1
            raw.close()
            return
        with self._lock:
            self.handshakes += 1
        backend = socket.create_connection(("127.0.0.1", self.backend_port))

        def pipe(src: socket.socket, dst: socket.socket, record: bool) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    if record:
                        with self._lock:
                            self.seen += data[:4096]
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(backend, tls, False), daemon=True)
        back.start()
        pipe(tls, backend, True)
        back.join(10)
        tls.close()
        backend.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(2)


@contextlib.contextmanager
def tls_front(backend_port: int, workdir: Path) -> Iterator[TlsFront]:
    front = TlsFront(backend_port, workdir)
    try:
        yield front
    finally:
        front.close()
