"""Scale-out, proven with processes (no cluster runs here): with two instances of every service
behind the gateway (`make run REPLICAS=2`; the test step starts them so), one instance of each is
SIGKILLed, one at a time, during a chat burst through the gateway. Nothing acknowledged is lost,
and every client is served by the survivors."""
import json
import os
import threading
import time
import uuid

import pytest
import websocket

import stack

REPLICAS = int(os.environ.get("SWIFTCHAT_REPLICAS", "1"))
WS = stack.GATEWAY.replace("http://", "ws://")


class ChatSocket:
    """A /ws/chat client through the gateway that reconnects by itself and keeps every frame."""

    def __init__(self, token):
        self.token, self.frames, self.lock, self.closed = token, [], threading.Lock(), False
        self.socket = None
        self.reconnects = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.closed:
            try:
                sock = websocket.create_connection(f"{WS}/ws/chat", header=[f"Authorization: Bearer {self.token}"], timeout=5)
                self.socket = sock
                while not self.closed:
                    try:
                        text = sock.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if not text:
                        break
                    with self.lock:
                        self.frames.append(json.loads(text))
            except Exception:
                pass
            self.socket = None
            self.reconnects += 1
            time.sleep(0.2)

    def send(self, frame):
        sock = self.socket
        if sock is None:
            return False
        try:
            sock.send(json.dumps(frame))
            return True
        except Exception:
            return False

    def of_type(self, kind):
        with self.lock:
            return [frame for frame in self.frames if frame.get("type") == kind]

    def close(self):
        self.closed = True
        if self.socket:
            self.socket.close()


def wait_for(condition, timeout=30, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def served(method, path, token):
    """Whether the gateway answers 2xx within 3 s (retrying while an instance is being replaced)."""
    return wait_for(lambda: stack.api(method, path, token).status_code < 300, timeout=3, every=0.1)


def test_one_instance_of_each_service_killed_during_a_burst_loses_nothing():
    assert REPLICAS >= 2, "the test step runs two instances of each service (SWIFTCHAT_REPLICAS=2)"
    alice, alice_token = stack.sign_up_api("so_")
    bob, bob_token = stack.sign_up_api("so_")
    created = None
    assert wait_for(lambda: stack.api("POST", "/api/conversations", alice_token, {"type": "direct", "userId": bob["id"]}).status_code in (200, 201))
    created = stack.api("POST", "/api/conversations", alice_token, {"type": "direct", "userId": bob["id"]}).json()["conversation"]["id"]
    sender, receiver = ChatSocket(alice_token), ChatSocket(bob_token)
    try:
        assert wait_for(lambda: sender.socket is not None and receiver.socket is not None)
        total, acked, started = 300, {}, time.monotonic()
        victims = [("auth", 2), ("users", 2), ("messages", 1), ("socket-handler", 1), ("notifications", 2)]
        killed, unserved = [], []
        for index in range(total):
            client_msg_id = f"so-{index}"
            frame = {"type": "send", "clientMsgId": client_msg_id, "conversationId": created, "body": f"burst {index}"}
            deadline = time.monotonic() + 60
            while client_msg_id not in acked:
                assert time.monotonic() < deadline, f"{client_msg_id} was never acknowledged"
                sender.send(frame)
                if wait_for(lambda: any(ack.get("clientMsgId") == client_msg_id for ack in sender.of_type("ack")), timeout=2, every=0.01):
                    acked[client_msg_id] = next(ack for ack in sender.of_type("ack") if ack["clientMsgId"] == client_msg_id)["message"]
            # Every 50 messages, one more instance dies; the others keep serving.
            if index % 50 == 25 and victims:
                name, instance = victims.pop(0)
                stack.kill_service(name, instance=instance)
                killed.append(f"{name}#{instance}")
                for method, path in [("GET", "/api/auth/currentuser"), ("GET", "/api/users/me"), ("GET", "/api/conversations"),
                                     ("GET", "/api/notifications")]:
                    if not served(method, path, alice_token):
                        unserved.append(f"{path} after {name}#{instance} died")
        elapsed = time.monotonic() - started
        print(f"{total} messages acked in {elapsed:.1f} s while {', '.join(killed)} were killed; sender reconnected {sender.reconnects - 1} times")
        assert len(killed) == 5
        assert unserved == [], unserved
        # Stored exactly once, gap-free, in send order.
        history = stack.api("GET", f"/api/conversations/{created}/messages?after=0&limit=1000", bob_token).json()["messages"]
        assert [message["clientMsgId"] for message in history] == [f"so-{index}" for index in range(total)]
        assert [message["seq"] for message in history] == list(range(1, total + 1))
        assert all(acked[message["clientMsgId"]]["id"] == message["id"] for message in history)
        # Bob has every one: live, or by catch-up from his first gap.
        live = {frame["message"]["seq"] for frame in receiver.of_type("message")}
        first_gap = next(seq for seq in range(1, total + 2) if seq not in live)
        rest = stack.api("GET", f"/api/conversations/{created}/messages?after={first_gap - 1}&limit=1000", bob_token).json()["messages"]
        assert live | {message["seq"] for message in rest} >= set(range(1, total + 1))
    finally:
        sender.close()
        receiver.close()
        # Back to two of each for whatever runs next.
        stack.start_services("auth", "users", "messages", "socket-handler", "notifications")
