"""Two people, two browsers (separate profiles, so separate cookies): sign up, find each other,
chat, and watch the ticks and the typing indicator."""
from stack import SCREENSHOTS, unique


def test_two_people_chat_with_ticks_typing_and_presence(browser):
    alice_name, bob_name = unique("alice_"), unique("bob_")
    bob = browser("bob", phone=True)  # Bob uses a phone-sized window (360 px wide)
    bob.sign_up(bob_name)
    bob.sign_out()  # Bob is away while Alice writes, so "sent" holds until he is back

    alice = browser("alice")
    alice.sign_up(alice_name)
    alice.message_person(bob_name)
    alice.start_status_log()
    # Bob's last socket closed: once the grace period is over, Alice sees when he was last seen.
    alice.wait(lambda: alice.subtitle().startswith("last seen today at"), "Bob shown offline, with his last-seen time")

    alice.send("Hi Bob! Are you there?")
    # Shown at once, then acknowledged after it is stored; Bob has no device online: one tick.
    alice.wait_status("Hi Bob! Are you there?", "sent")
    assert alice.bodies() == ["Hi Bob! Are you there?"]

    # Bob comes back (signing in by email this time): the message reaches his device (delivered)...
    bob.sign_in(f"{bob_name}@example.com", expect=bob_name)
    alice.wait_status("Hi Bob! Are you there?", "delivered")
    alice.wait(lambda: alice.subtitle() == "online", "Bob shown online in the chat header")
    bob.wait(lambda: bob.unread_count(alice_name) == 1, "one unread message from Alice in Bob's list")

    # While he was away, the notifications service kept a "new message" notification: the bell
    # shows it unread, live from /ws/notifications.
    unread_message_note = (".notification.unread[data-kind=message]")
    bob.click("#notifications-button", "the bell")
    bob.wait(lambda: alice_name in bob.text(unread_message_note), "an unread message notification from Alice")
    assert bob.text_content(".notification-badge") != ""
    bob.click("#notifications-button", "the bell, to close the panel")

    # ...and once he opens the conversation and it is on his screen, read.
    bob.open_conversation(alice_name)
    bob.wait_bodies(["Hi Bob! Are you there?"])
    alice.wait_status("Hi Bob! Are you there?", "read")
    assert alice.status_log("Hi Bob! Are you there?") == ["sent", "delivered", "read"]
    bob.wait(lambda: bob.unread_count(alice_name) == 0, "the unread count cleared")
    # Reading the chat marks its notification read too (pushed back on the stream).
    bob.wait(lambda: not bob.all(unread_message_note), "the message notification marked read")

    # Bob types: Alice sees it in her header; then he sends and the indicator goes.
    bob.type_text("Yes, just got ")
    alice.wait(lambda: alice.subtitle() == "typing…", "“typing…” in Alice's header")
    bob.send("here. Hello Alice!")
    alice.wait_bodies(["Hi Bob! Are you there?", "Yes, just got here. Hello Alice!"])
    alice.wait(lambda: alice.subtitle() == "online", "typing indicator gone after the message")
    bob.wait_status("Yes, just got here. Hello Alice!", "read")  # Alice has the chat on screen

    # A few more each way; both sides agree on every message, once, in order.
    alice.send("Great to hear from you.")
    alice.send("<b>Not bold</b> & <script>alert(1)</script>")  # shown as text, never as HTML
    bob.send("Same here 😊")
    expected = ["Hi Bob! Are you there?", "Yes, just got here. Hello Alice!", "Great to hear from you.",
                "<b>Not bold</b> & <script>alert(1)</script>", "Same here 😊"]
    for page in (alice, bob):
        page.wait_bodies(expected)
    assert not alice.all(".message-body b, .message-body script")
    own = [m["own"] for m in alice.messages()]
    assert own == [True, False, True, True, False]
    for body in ("Hi Bob! Are you there?", "Great to hear from you."):
        alice.wait_status(body, "read")

    alice.screenshot(SCREENSHOTS / "chat.png")
    bob.screenshot(SCREENSHOTS / "mobile.png")


# Messages from another member, delivered live in the order given, into a group the page is shown.
OUT_OF_ORDER = """
const done = arguments[arguments.length - 1];
import('/js/state.js').then((m) => {
  const id = 'out-of-order-' + Date.now();
  m.upsertConversation({ id, type: 'group', name: 'Out of order', lastSeq: 0,
    members: [{ userId: m.state.me.id, role: 'admin' }, { userId: 'someone-else', role: 'member' }] });
  const message = (seq) => ({ id: id + '-' + seq, conversationId: id, seq, senderId: 'someone-else',
    clientMsgId: 'c' + seq, body: 'message ' + seq, sentAt: new Date().toISOString() });
  const counts = [];
  for (const seq of arguments[0]) {
    m.addMessages(id, [message(seq)], { live: true });
    counts.push(m.state.conversations.get(id).unreadCount);
  }
  done(counts);
}, (error) => done(String(error)));
"""


def test_live_messages_out_of_seq_order_each_count_once_as_unread(browser):
    """Two socket-handler instances route a conversation's stored batches, so its live frames can
    arrive out of seq order: each still counts once as unread, and a repeated frame not at all."""
    page = browser("olive")
    page.sign_up(unique("olive_"))
    assert page.driver.execute_async_script(OUT_OF_ORDER, [2, 1, 1, 3]) == [1, 2, 2, 3]
