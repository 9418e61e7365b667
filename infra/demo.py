#!/usr/bin/env python3
"""A two-user SwiftChat session through the gateway, with both websocket streams per user.

Standard library only. Run after `make run`:  python3 infra/demo.py [http://127.0.0.1:8080]
Prints each step and what came back; exits non-zero if something expected does not arrive.
"""
import base64
import json
import os
import queue
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

GATEWAY = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
HOST, PORT = urllib.parse.urlsplit(GATEWAY).hostname, urllib.parse.urlsplit(GATEWAY).port or 80
ORIGIN = "http://127.0.0.1:8080"


def api(method, path, token=None, body=None):
    """One JSON request with a bearer token; returns (status, parsed body)."""
    request = urllib.request.Request(GATEWAY + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode() or "{}")


class Socket:
    """A minimal websocket client (RFC 6455): text frames in and out, answers pings."""

    def __init__(self, path, token, name):
        self.name, self.frames = name, queue.Queue()
        for attempt in range(50):
            self.sock = socket.create_connection((HOST, PORT), timeout=10)
            key = base64.b64encode(os.urandom(16)).decode()
            self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n"
                               f"Authorization: Bearer {token}\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.sock.recv(1)
                if not chunk:
                    break
                head += chunk
            if head.startswith(b"HTTP/1.1 101"):
                break
            self.sock.close()
            time.sleep(0.2)
        else:
            sys.exit(f"{name}: {path} did not upgrade: {head[:80]!r}")
        self.sock.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()

    def _exactly(self, count):
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _read(self):
        try:
            while True:
                first, second = self._exactly(2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    length = struct.unpack("!H", self._exactly(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", self._exactly(8))[0]
                payload = self._exactly(length)
                if opcode == 0x1:
                    self.frames.put(json.loads(payload.decode()))
                elif opcode == 0x9:
                    self._write(0xA, payload)
                elif opcode == 0x8:
                    return
        except (ConnectionError, OSError):
            return

    def _write(self, opcode, payload):
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, frame):
        self._write(0x1, json.dumps(frame).encode())

    def expect(self, what, matches, timeout=15):
        """Waits for the first frame that `matches` (skipping others); prints and returns it."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                frame = self.frames.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                break
            if matches(frame):
                print(f"  {self.name} <- {json.dumps(frame)}")
                return frame
        sys.exit(f"{self.name}: no {what} within {timeout}s")

    def close(self):
        try:
            self._write(0x8, struct.pack("!H", 1000))
        finally:
            self.sock.close()


def sign_up(username):
    password = "correct horse battery"
    status, body = api("POST", "/api/auth/signup", body={"username": username, "email": f"{username}@example.com", "password": password})
    if status != 201:
        sys.exit(f"signup {username}: {status} {body}")
    return body["user"]["id"], body["accessToken"]


def step(text):
    print(f"\n== {text}")


suffix = base64.b32encode(os.urandom(5)).decode().lower()
step("Alice and Bob sign up")
alice_id, alice = sign_up(f"alice_{suffix}")
bob_id, bob = sign_up(f"bob_{suffix}")
print(f"  alice {alice_id}\n  bob   {bob_id}")

step("Both open /ws/notifications; Alice opens /ws/chat (Bob has no chat socket yet: he is offline)")
alice_notes, bob_notes = Socket("/ws/notifications", alice, "alice/notifications"), Socket("/ws/notifications", bob, "bob/notifications")
alice_chat = Socket("/ws/chat", alice, "alice/chat")

step("Alice adds Bob as a contact; Bob is notified live")
for _ in range(50):  # users learns of Bob from user.registered, a moment after signup
    status, _ = api("PUT", f"/api/users/me/contacts/{bob_id}", alice)
    if status == 200:
        break
    time.sleep(0.2)
bob_notes.expect("contact_added", lambda f: f.get("type") == "notification" and f["notification"]["kind"] == "contact_added")

step("Alice opens the direct conversation and sends two messages over /ws/chat; acks come after storage")
for _ in range(50):  # messages learns of users the same way
    status, body = api("POST", "/api/conversations", alice, {"type": "direct", "userId": bob_id})
    if status in (200, 201):
        break
    time.sleep(0.2)
conversation = body["conversation"]["id"]
for number, text in enumerate(["Hi Bob!", "Are you there?"], start=1):
    alice_chat.send({"type": "send", "clientMsgId": f"demo-{number}", "conversationId": conversation, "body": text})
    alice_chat.expect("ack", lambda f, n=number: f.get("type") == "ack" and f["clientMsgId"] == f"demo-{n}")

step("Bob, offline for chat, gets one notification for the conversation, its count at 2")
bob_notes.expect("message notification", lambda f: f.get("type") == "notification" and f["notification"]["kind"] == "message"
                 and f["notification"]["payload"].get("count") == 2)
status, body = api("GET", "/api/notifications?unread=true", bob)
print(f"  GET /api/notifications?unread=true -> {status}: {[(n['kind'], n['payload'].get('count')) for n in body['notifications']]}")

step("Bob opens /ws/chat: Alice sees him come online on her notification stream")
bob_chat = Socket("/ws/chat", bob, "bob/chat")
alice_notes.expect("presence online", lambda f: f.get("type") == "presence" and f["userId"] == bob_id and f["online"])

step("Bob catches up by seq and reads; Alice gets the read tick, and Bob's notification is read")
status, body = api("GET", f"/api/conversations/{conversation}/messages?after=0", bob)
last_seq = body["messages"][-1]["seq"]
print(f"  GET .../messages?after=0 -> {[m['body'] for m in body['messages']]}")
bob_chat.send({"type": "read", "conversationId": conversation, "seq": last_seq})
alice_chat.expect("read receipt", lambda f: f.get("type") == "receipt" and f["userId"] == bob_id and f["readSeq"] == last_seq)
for _ in range(50):
    status, body = api("GET", "/api/notifications?unread=true", bob)
    if not [n for n in body["notifications"] if n["kind"] == "message"]:
        break
    time.sleep(0.2)
print(f"  GET /api/notifications?unread=true -> {[(n['kind'], n['payload'].get('count')) for n in body['notifications']]}")

step("Bob types and replies live; Alice sees both")
bob_chat.send({"type": "typing", "conversationId": conversation, "typing": True})
alice_chat.expect("typing", lambda f: f.get("type") == "typing" and f["userId"] == bob_id)
bob_chat.send({"type": "send", "clientMsgId": "demo-bob-1", "conversationId": conversation, "body": "Here now!"})
alice_chat.expect("message", lambda f: f.get("type") == "message" and f["message"]["clientMsgId"] == "demo-bob-1")

step("Bob closes his chat socket: after the grace period Alice sees him go offline, with lastSeenAt")
bob_chat.close()
alice_notes.expect("presence offline", lambda f: f.get("type") == "presence" and f["userId"] == bob_id and not f["online"], timeout=30)

for sock in (alice_chat, alice_notes, bob_notes):
    sock.close()
print("\nDone.")
