"""A websocket handshake on a plain socket: enough to see exactly what the gateway answers."""
import base64
import os
import socket
import struct
from urllib.parse import urlsplit


class Upgrade:
    def __init__(self, sock, status, headers, rest):
        self.sock, self.status, self.headers, self.rest = sock, status, headers, rest

    def close(self):
        """A proper close handshake (so the server counts the socket gone), then the TCP close."""
        try:
            if self.status == 101:
                payload = struct.pack("!H", 1000)
                mask = os.urandom(4)
                self.sock.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                self.sock.settimeout(5)
                while self.sock.recv(4096):  # until the server's close and EOF
                    pass
        except OSError:
            pass
        finally:
            self.sock.close()


def upgrade(gateway, path, headers=None, timeout=10):
    """Sends a websocket upgrade request; returns an Upgrade with the status and headers."""
    parts = urlsplit(gateway)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return Upgrade(sock, status, parsed, rest)
