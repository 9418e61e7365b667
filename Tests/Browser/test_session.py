"""The session survives a reload; signing out closes both streams and ends the session."""
import json

import pytest

from stack import api, kill_every_instance, sign_up_api, standing_in_for, start_services, unique


class SocketLog:
    """Chromium's own record of the page's websockets (CDP Network events in the performance log)."""

    def __init__(self, page):
        self.page, self.sockets = page, {}

    def update(self):
        for entry in self.page.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.webSocketCreated":
                self.sockets[params["requestId"]] = {"path": params["url"].split("/", 3)[-1], "closed": False}
            elif message["method"] == "Network.webSocketClosed" and params["requestId"] in self.sockets:
                self.sockets[params["requestId"]]["closed"] = True
        return list(self.sockets.values())


def test_reload_keeps_the_session_and_sign_out_closes_both_streams(browser):
    name, friend = unique("dana_"), unique("eve_")
    eve = browser("eve")
    eve.sign_up(friend)
    dana = browser("dana")
    dana.sign_up(name)
    dana.message_person(friend)
    dana.send("Still there after a reload?")
    dana.wait_status("Still there after a reload?", "delivered")

    # Reload: still signed in (the HttpOnly cookies), the same conversation open, both streams up.
    dana.driver.get_log("performance")  # forget the sockets of the page before the reload
    sockets = SocketLog(dana)
    dana.reload()
    dana.wait_signed_in(name)
    dana.wait(lambda: dana.text("#chat-title") == friend, "the conversation open again after the reload")
    dana.wait_bodies(["Still there after a reload?"])
    assert dana.js("return document.cookie") == ""  # the tokens are HttpOnly: nothing for scripts
    dana.wait(lambda: sorted(s["path"] for s in sockets.update() if not s["closed"]) == ["ws/chat", "ws/notifications"],
              "one open socket per stream")

    # Sign out: the page closes both sockets (and opens no new ones), and the session is over.
    dana.sign_out()
    dana.wait_streams("closed")
    dana.wait(lambda: all(s["closed"] for s in sockets.update()), "Chromium reports every socket closed")
    assert {s["path"] for s in sockets.update()} == {"ws/chat", "ws/notifications"}
    status = dana.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/auth/currentuser').then((r) => done(r.status));""")
    assert status == 401

    dana.reload()
    dana.wait(lambda: dana.visible("#auth-title"), "the sign-in screen after a reload")
    assert not dana.all(".topbar")


def test_two_windows_of_one_user_stay_in_step(browser):
    name, friend = unique("fay_"), unique("gus_")
    gus = browser("gus")
    gus.sign_up(friend)
    fay = browser("fay")
    fay.sign_up(name)
    fay.message_person(friend)

    # A second window of the same browser profile: the same session, its own two sockets.
    first = fay.driver.current_window_handle
    url = fay.driver.current_url
    fay.driver.switch_to.new_window("window")
    fay.driver.get(url)
    second = fay.driver.current_window_handle
    fay.wait_signed_in(name)
    fay.wait(lambda: fay.text("#chat-title") == friend, "the conversation open in the second window")

    fay.driver.switch_to.window(first)
    fay.send("sent from the first window")
    fay.driver.switch_to.window(second)
    fay.wait_bodies(["sent from the first window"])
    assert [m["own"] for m in fay.messages()] == [True]

    gus.open_conversation(name)
    gus.send("seen in both")
    expected = ["sent from the first window", "seen in both"]
    fay.wait_bodies(expected)
    fay.driver.switch_to.window(first)
    fay.wait_bodies(expected)
    fay.wait_status("sent from the first window", "read")


def test_a_session_ended_elsewhere_brings_back_the_sign_in_screen(browser):
    """The session is signed out through the API (as from another device): auth refuses to renew
    it, so the page ends it and shows the sign-in screen, saying why."""
    name = unique("hal_")
    hal = browser("hal")
    hal.sign_up(name)
    token = hal.driver.get_cookie("access_token")["value"]
    assert api("POST", "/api/auth/signout", token).status_code == 204
    hal.wait(lambda: hal.visible("#auth-title"), "the sign-in screen")
    assert "session has ended" in hal.text_content(".notice")
    assert not hal.all(".topbar")


def refreshes(page):
    """How auth answered the page's requests to renew its session."""
    return [r["status"] for r in page.requests_to("/api/auth/refresh")]


def test_an_auth_outage_does_not_end_the_session(browser):
    """The access token is gone (as when it expires) while every auth instance is down: a request
    is refused and the session cannot be renewed for now, yet the page stays signed in. Once auth
    is back, the next request renews the session and is answered."""
    name, friend = unique("dana_"), unique("eve_")
    browser("eve").sign_up(friend)
    dana = browser("dana")
    dana.sign_up(name)
    dana.show_tab("people")
    try:
        kill_every_instance("auth")
        dana.driver.delete_cookie("access_token")
        dana.js("performance.clearResourceTimings()")
        dana.css("#people-search").send_keys(friend[:-1])  # a search: users answers 401
        dana.wait(lambda: "renew your session" in dana.text_content(".people [role=status]"),
                  "the search's answer: the session cannot be renewed for now")
        assert any(status >= 500 for status in refreshes(dana))
        assert dana.text_content(".topbar .me-name") == name
        assert not dana.visible("#auth-title")
    finally:
        start_services("auth")  # whatever happened, for the tests after this one

    # The gateway serves auth as soon as it is ready again (it marks no instance down).
    assert api("GET", "/api/auth/currentuser").status_code == 401
    dana.find_person(friend)  # searched for in full: the session renewed, then the search answered
    assert 200 in refreshes(dana)
    assert dana.driver.get_cookie("access_token")
    assert dana.text_content(".topbar .me-name") == name


def test_a_reload_during_an_auth_outage_carries_on_once_auth_is_back(browser):
    """A reload while every auth instance is down: the page cannot tell whether the session is
    good, so it shows the sign-in screen with a notice, and keeps asking; once auth is back the
    session carries on by itself, with no sign-in."""
    name = unique("ivy_")
    ivy = browser("ivy")
    ivy.sign_up(name)
    try:
        kill_every_instance("auth")
        ivy.reload()
        ivy.wait(lambda: ivy.visible("#auth-title") and ivy.visible(".notice"), "the sign-in screen with a notice")
        assert not ivy.all(".topbar")
        # Typed while the page keeps asking: its later checks change only the notice.
        ivy.css("#auth-panel-signin input[name=login]").send_keys(name)
        ivy.wait(lambda: len(ivy.requests_to("/api/auth/currentuser")) >= 2, "the session asked for again")
        assert ivy.css("#auth-panel-signin input[name=login]").get_attribute("value") == name
    finally:
        start_services("auth")  # whatever happened, for the tests after this one

    ivy.wait_signed_in(name)


def test_a_reload_while_auth_asks_to_wait_says_so_and_waits_it_out(browser):
    """A reload while auth answers 429 with a Retry-After (a stand-in on auth's port: auth limits
    sign-in attempts, not session checks): the sign-in screen says SwiftChat asked to wait, the page
    asks again only once that time has passed, and once auth is back the session carries on."""
    name = unique("joy_")
    joy = browser("joy")
    joy.sign_up(name)
    try:
        kill_every_instance("auth")
        with standing_in_for("auth", 429, {"error": {"code": "rate_limited", "message": "Too many requests; try again later."}},
                             {"Retry-After": "2"}):
            joy.reload()
            joy.wait(lambda: "asked to wait a moment" in joy.text_content(".notice"), "the sign-in screen: asked to wait")
            assert joy.visible("#auth-title")
            joy.wait(lambda: len(joy.requests_to("/api/auth/currentuser")) >= 2, "the session asked for again")
            first, second = joy.requests_to("/api/auth/currentuser")[:2]
            assert first["status"] == 429
            assert second["start"] - first["end"] >= 2000, (first, second)
    finally:
        start_services("auth")  # whatever happened, for the tests after this one

    joy.wait_signed_in(name)


def test_auth_asking_to_wait_on_a_renewal_is_said_and_the_session_stays(browser):
    """Auth answers a renewal with 429 and a Retry-After: the page stays signed in and says how long
    to wait, and the next request after that renews the session."""
    friend = sign_up_api("lee_")[0]["username"]
    name = unique("kim_")
    kim = browser("kim")
    kim.sign_up(name)
    kim.show_tab("people")
    # Auth limits sign-in attempts, not renewals: the page's own fetch stands in for it asking to wait.
    kim.fake_answers("/api/auth/refresh", 1, 429, {"error": {"code": "rate_limited", "message": "Too many attempts; try again later."}},
                     {"Retry-After": "7"})
    kim.driver.delete_cookie("access_token")
    kim.css("#people-search").send_keys(friend[:-1])  # a search: users answers 401, the renewal 429
    kim.wait(lambda: "Try again in 7 s" in kim.text_content(".people [role=status]"),
             "the search's answer: the renewal must wait 7 s")
    assert "asked to wait before it renews your session" in kim.text_content(".people [role=status]")
    assert kim.faked_answers("/api/auth/refresh") == 1
    assert kim.text_content(".topbar .me-name") == name
    assert not kim.visible("#auth-title")

    kim.find_person(friend)  # searched for again: this renewal goes through, then the search
    assert 200 in refreshes(kim)
    assert kim.driver.get_cookie("access_token")


# The page's RetryingFetch (retry.js) asked for again after a 429 with `Retry-After: 1`: its own
# first try fails so, and it is asked again while that try runs ("again"), or after it, once
# cancelled as a stream that dropped and opened again does ("reopened"); or its first try goes
# through and a gap's own fetch fails so and asks for one more ("gap"). Resolves to when (ms) each
# try began, and when the wait began (the failure's answer).
RETRY_AFTER_JS = """
const [asked, done] = arguments;
import('/js/retry.js').then(async ({ RetryingFetch }) => {
  const began = [];
  const start = performance.now();
  const askedToWait = () => Object.assign(new Error('asked to wait'), { status: 429, retryAfter: 1 });
  let waitFrom = null;
  const retrying = new RetryingFetch('a test fetch', async () => {
    began.push(performance.now() - start);
    if (began.length === 1 && asked !== 'gap') {
      waitFrom = performance.now() - start;
      throw askedToWait();
    }
  }, () => true);
  if (asked === 'again') {
    retrying.run();
    retrying.run(); // asked for again while the first try runs
  } else if (asked === 'reopened') {
    await retrying.run();
    retrying.cancel(); // the stream dropped…
    retrying.run(); // …and opened again
  } else {
    await retrying.run();
    waitFrom = performance.now() - start;
    retrying.later(askedToWait()); // a gap's fetch failed so
  }
  const until = Date.now() + 5000;
  while (began.length < 2 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  done({ began, waitFrom });
});
"""


@pytest.mark.parametrize("asked", ["again", "reopened", "gap"])
def test_a_retry_after_is_waited_out_whoever_asks_again(browser, asked):
    """A fetch that failed with 429 and a Retry-After is tried again only once that time has passed,
    even when it was asked for again while it ran (a gap found, say), by a stream that dropped and
    opened again meanwhile, or by a gap's own fetch that failed so."""
    page = browser("ned")
    tries = page.driver.execute_async_script(RETRY_AFTER_JS, asked)
    assert len(tries["began"]) == 2, tries
    assert tries["began"][1] - tries["waitFrom"] >= 1000, tries
