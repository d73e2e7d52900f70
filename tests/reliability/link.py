"""A network link a test can cut: a TCP relay on a free loopback port in front of a server.

``cut()`` is a partition as a network makes it, not a refusal: no reset and no error, the relay
just stops carrying bytes (they wait in the kernel's buffers) and new connections are accepted
but not carried further; a client's call hangs. ``restore()`` carries on where it stopped, as a
network that heals does (TCP delivers what waited), unless the server gave up meanwhile.
"""

from __future__ import annotations

import select
import socket
import threading


class Link:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._up = threading.Event()
        self._up.set()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="link-accept", daemon=True).start()

    def cut(self) -> None:
        self._up.clear()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed.set()
        self._up.set()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), name="link-relay", daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self._up.wait()  # a connection made while cut waits, as a SYN would be retried
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, server]
        peers = {client: server, server: client}
        try:
            while not self._closed.is_set():
                self._up.wait()
                ready, _, _ = select.select(list(peers), [], [], 0.05)
                if not self._up.is_set():
                    continue  # cut meanwhile: leave the bytes where they are
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()
