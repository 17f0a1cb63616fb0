"""One way to serve a WSGI app from a thread on 127.0.0.1: the gateway and moto's server both use it."""

from __future__ import annotations

import socket
import threading
from wsgiref.types import WSGIApplication

from werkzeug.serving import LISTEN_QUEUE, WSGIRequestHandler, make_server


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one); OSError if the port is taken.

    Bound here rather than by werkzeug, which exits the process when a port is taken. The backlog is
    werkzeug's own: a burst of clients queues instead of being reset.
    """
    return socket.create_server((host, port), backlog=LISTEN_QUEUE)


def origin(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class ServerThread:
    """A threaded werkzeug server on an already listening socket, run by a daemon thread."""

    def __init__(
        self, app: WSGIApplication, sock: socket.socket, name: str, handler: type[WSGIRequestHandler]
    ) -> None:
        host, port = sock.getsockname()[:2]
        self._server = make_server(host, port, app, threaded=True, request_handler=handler, fd=sock.fileno())
        sock.close()  # the server holds its own duplicate of the descriptor
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port (also when it never started)."""
        # shutdown() waits for serve_forever() to return: it would block forever if it never ran.
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
