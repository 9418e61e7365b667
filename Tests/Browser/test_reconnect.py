"""Streams drop while messages are sent: after the reconnect both sides show every message
exactly once, in order (resend by clientMsgId, catch-up by seq, dedupe by id)."""
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import websocket

from stack import GATEWAY, api, kill_every_instance, kill_service, sign_up_api, start_services, unique


def direct_chat(browser):
    alice_name, bob_name = unique("alice_"), unique("bob_")
    alice, bob = browser("alice"), browser("bob")
    bob.sign_up(bob_name)
    alice.sign_up(alice_name)
    alice.message_person(bob_name)
    alice.send("before")
    bob.open_conversation(alice_name)
    bob.wait_bodies(["before"])
    return alice, bob


def test_page_drops_its_chat_stream_while_sending(browser):
    alice, bob = direct_chat(browser)

    # Alice's socket drops; what she writes meanwhile is pending, then resent on reconnect.
    alice.drop_stream("chat", hold_ms=3000)
    alice.wait(lambda: alice.stream("chat") == "reconnecting", "Alice's chat stream reconnecting")
    alice.wait(lambda: alice.visible("#banner"), "the reconnecting banner")
    for n in range(1, 6):
        alice.send(f"a{n}")
    assert alice.status("a5") == "pending"
    # Bob's socket drops too while Alice keeps writing: he catches up by seq on reconnect.
    bob.drop_stream("chat", hold_ms=2000)
    for n in range(6, 11):
        alice.send(f"a{n}")
    bob.send("b1")

    expected_alice = ["before"] + [f"a{n}" for n in range(1, 11)]
    for page in (alice, bob):
        page.wait(lambda page=page: page.stream("chat") == "open", "the chat stream back")
        page.wait(lambda page=page: not page.visible("#banner"), "the banner gone")
    # Alice's and Bob's own sends are each in their own order; the whole list is identical on both
    # sides and nothing shows twice.
    alice.wait(lambda: len(alice.bodies()) == 12 and all(m["seq"] for m in alice.messages()), "all 12 stored on Alice's side")
    bob.wait(lambda: bob.bodies() == alice.bodies(), "Bob's list identical to Alice's")
    bodies = alice.bodies()
    assert sorted(bodies) == sorted(expected_alice + ["b1"]), bodies
    assert [b for b in bodies if b.startswith("a") or b == "before"] == expected_alice
    seqs = [m["seq"] for m in alice.messages()]
    assert seqs == list(range(1, 13)), seqs
    assert len({m["id"] for m in bob.messages()}) == 12
    for n in range(1, 11):
        alice.wait_status(f"a{n}", "read")


def test_socket_handler_killed_and_restarted_while_sending(browser):
    alice, bob = direct_chat(browser)

    alice.send("x1")
    alice.send("x2")
    kill_every_instance("socket-handler")  # SIGKILL: no goodbye to any socket
    for page in (alice, bob):
        page.wait(lambda page=page: page.stream("chat") == "reconnecting", "the chat stream reconnecting")
        page.wait(lambda page=page: page.visible("#banner"), "the reconnecting banner")
    alice.send("x3")
    alice.send("x4")
    bob.send("y1")
    assert alice.status("x3") == "pending"
    start_services("socket-handler")

    for page in (alice, bob):
        page.wait(lambda page=page: page.stream("chat") == "open", "the chat stream back", timeout=40)
    alice.wait(lambda: len(alice.bodies()) == 6 and all(m["seq"] for m in alice.messages()), "all 6 stored on Alice's side")
    bob.wait(lambda: bob.bodies() == alice.bodies(), "Bob's list identical to Alice's")
    bodies = alice.bodies()
    assert [b for b in bodies if b != "y1"] == ["before", "x1", "x2", "x3", "x4"], bodies
    assert [m["seq"] for m in bob.messages()] == list(range(1, 7))
    for body in ("x1", "x2", "x3", "x4"):
        alice.wait_status(body, "read")
    bob.wait_status("y1", "read")


def bob_away_from_alice(browser, prefix):
    """Alice (through the API) and Bob (in a browser) in a direct chat, with "gap 0" on Bob's
    screen, then Bob's chat stream down until released. Returns Bob's page, send(k), which has
    Alice send "gap k" through the API, her access token and the conversation's id."""
    alice, alice_token = sign_up_api(prefix)
    bob_user, _ = sign_up_api(prefix)
    bob = browser("bob")
    bob.sign_in(bob_user["username"])
    # messages learns of new users from their events: asked until it has.
    created = bob.wait(lambda: (r := api("POST", "/api/conversations", alice_token, {"type": "direct", "userId": bob_user["id"]})).ok and r,
                       "the conversation created")
    conversation = created.json()["conversation"]["id"]

    def send(k):
        sent = api("POST", f"/api/conversations/{conversation}/messages", alice_token, {"clientMsgId": f"g{k}", "body": f"gap {k}"})
        assert sent.status_code == 201, sent.text

    send(0)
    bob.open_conversation(alice["username"])
    bob.wait_bodies(["gap 0"])
    bob.drop_stream("chat", hold_ms=600_000)  # down until released
    bob.wait(lambda: bob.stream("chat") == "reconnecting", "Bob's chat stream down")
    return bob, send, alice_token, conversation


def test_a_long_gap_is_fetched_by_seq_range_several_pages_at_once(browser):
    """Bob's chat stream is down while 750 messages arrive (almost four pages of 200): on reconnect
    he fetches them as seq ranges, several at once, and shows each once, in seq order."""
    bob, send, _, _ = bob_away_from_alice(browser, "gap_")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(1, 751)))
    bob.js("performance.clearResourceTimings()")
    bob.release_stream("chat")

    bob.wait(lambda: len(bob.messages()) == 751, "all 751 messages on Bob's side", timeout=60)
    assert [m["seq"] for m in bob.messages()] == list(range(1, 752))
    # Sent eight at a time, so stored in any order: each once.
    assert sorted(bob.bodies()) == sorted(f"gap {k}" for k in range(751))
    requests = [r for r in bob.requests_to("/api/conversations/") if r["path"].endswith("/messages") and r["query"]]
    ranges = [r for r in requests if "before=" in r["query"]]
    assert len(ranges) >= 3, requests
    # Side by side: some range was asked for before another one's answer had come back.
    assert any(a["start"] < b["end"] and b["start"] < a["end"] for a in ranges for b in ranges if a is not b), requests


@contextmanager
def down_while_coming_back(page, stream, service, path):
    """Every instance of `service` is down while the page's `stream`, held down, is released: what
    the stream fetches from `path` on opening fails, and is tried again (two failed requests in the
    browser's resource timing) before the body runs. The service is started again on leaving,
    whatever happened, for the tests after this one."""
    try:
        kill_every_instance(service)
        page.js("performance.clearResourceTimings()")
        page.release_stream(stream)
        page.wait(lambda: page.stream(stream) == "open", f"the {stream} stream back")
        page.wait(lambda: sum(r["status"] >= 500 for r in page.requests_to(path)) >= 2, f"what the {stream} stream fetches failed and was tried again")
        yield
    finally:
        start_services(service)


def test_a_failed_catch_up_is_tried_again_until_it_goes_through(browser):
    """Bob's chat stream comes back while messages is down, so his catch-up fails; it is tried
    again with backoff and fetches what he missed once messages is back, with no new message or
    reconnect to set it off."""
    bob, _, alice_token, conversation = bob_away_from_alice(browser, "retry_")
    # Alice sends on her own chat socket: each ack comes once the message is stored and routed, so
    # none can reach Bob live after messages is back, and only a catch-up can bring them.
    alice_socket = websocket.create_connection(f"{GATEWAY.replace('http://', 'ws://')}/ws/chat",
                                               header=[f"Authorization: Bearer {alice_token}"], timeout=10)
    try:
        for k in range(1, 6):
            alice_socket.send(json.dumps({"type": "send", "clientMsgId": f"g{k}", "conversationId": conversation, "body": f"gap {k}"}))
        acked = set()
        while acked != {f"g{k}" for k in range(1, 6)}:
            frame = json.loads(alice_socket.recv())  # times out after 10 s
            if frame["type"] == "ack":
                acked.add(frame["clientMsgId"])
    finally:
        alice_socket.close()
    with down_while_coming_back(bob, "chat", "messages", "/api/conversations"):
        assert bob.bodies() == ["gap 0"]

    bob.wait(lambda: len(bob.messages()) == 6, "what Bob missed, once messages is back", timeout=60)
    assert [m["seq"] for m in bob.messages()] == list(range(1, 7))
    assert bob.bodies() == [f"gap {k}" for k in range(6)]


def alice_offline_unheard_by_bob(browser):
    """A direct chat; then Alice goes offline while Bob's notification stream is held down, so her
    presence frame passes him by and his header still says "online". Returns Bob's page and
    Alice's id."""
    alice, bob = direct_chat(browser)
    bob.wait(lambda: bob.subtitle() == "online", "Alice shown online in Bob's chat header")
    alice_token = alice.driver.get_cookie("access_token")["value"]
    alice_id = api("GET", "/api/auth/currentuser", alice_token).json()["user"]["id"]
    bob_token = bob.driver.get_cookie("access_token")["value"]
    bob.drop_stream("notifications", hold_ms=600_000)  # down until released
    bob.wait(lambda: bob.stream("notifications") != "open", "Bob's notification stream down")
    alice.sign_out()
    bob.wait(lambda: (answer := api("GET", f"/api/users/{alice_id}", bob_token)).ok and answer.json()["user"]["online"] is False,
             "Alice offline, as users has it")
    assert bob.subtitle() == "online"  # what he last heard
    return bob, alice_id


def test_a_failed_presence_refresh_is_tried_again_until_it_goes_through(browser):
    """Bob missed Alice going offline; his notification stream comes back while users is down, so
    the presence refresh fails. It is tried again with backoff, and once users is back his chat
    header shows her offline, with no reconnect."""
    bob, _ = alice_offline_unheard_by_bob(browser)
    with down_while_coming_back(bob, "notifications", "users", "/api/users"):
        assert bob.subtitle() == "online"

    bob.wait(lambda: bob.subtitle().startswith("last seen"), "Alice shown offline, once users is back", timeout=60)
    assert bob.stream("notifications") == "open"


def test_a_peer_whose_profile_fails_is_asked_for_again(browser):
    """Bob missed Alice going offline; when his notification stream comes back, his contacts load
    but Alice's profile (she is a direct-chat peer, not a contact) answers 503 twice: the presence
    refresh is tried again until it has her, and his header shows her offline."""
    bob, alice_id = alice_offline_unheard_by_bob(browser)
    bob.fake_answers(f"/api/users/{alice_id}", 2, 503, {"error": {"code": "service_unavailable", "message": "down for a moment"}})
    bob.release_stream("notifications")
    bob.wait(lambda: bob.subtitle().startswith("last seen"), "Alice shown offline, her profile asked for again")
    assert bob.faked_answers(f"/api/users/{alice_id}") == 2
