"""The web client as a person uses it, one browser (one profile, one user) per ChatPage.

Every wait is a bounded poll on a condition (WebDriverWait), never a fixed sleep."""
import json

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from stack import PASSWORD

TIMEOUT = 20

# One snapshot of the open conversation's messages, read in the page (one round trip).
MESSAGES_JS = """
return [...document.querySelectorAll('.message-items .message')].map((el) => ({
  body: el.querySelector('.message-body')?.textContent ?? '',
  status: el.dataset.status || null,
  own: el.classList.contains('own'),
  seq: el.dataset.seq ? Number(el.dataset.seq) : null,
  id: el.dataset.messageId || null,
  readBy: el.querySelector('.read-by')?.textContent ?? null,
}));
"""

# The page's fetch, made to answer the next `times` requests whose path ends with `path` itself.
FAKE_ANSWERS_JS = """
const [path, times, status, body, headers] = arguments;
const fetch = window.fetch;
window.__fakedAnswers = window.__fakedAnswers || {};
window.__fakedAnswers[path] = window.__fakedAnswers[path] || 0;
let given = 0; // by this fake; the page's count is over every fake for the path
window.fetch = (input, init) => {
  if (String(input).split('?')[0].endsWith(path) && given < times) {
    given += 1;
    window.__fakedAnswers[path] += 1;
    return Promise.resolve(new Response(body, { status, headers: { 'Content-Type': 'application/json', ...headers } }));
  }
  return fetch(input, init);
};
"""

# The page's requests whose path starts with arguments[0], from the browser's resource timing.
REQUESTS_JS = """
return performance.getEntriesByType('resource')
  .map((entry) => ({ url: new URL(entry.name), entry }))
  .filter(({ url }) => url.pathname.startsWith(arguments[0]))
  .map(({ url, entry }) => ({
    path: url.pathname, query: url.search, status: entry.responseStatus, start: entry.startTime, end: entry.responseEnd,
  }));
"""

# Records every status change of my messages, to check that ticks only move forward.
STATUS_LOG_JS = """
window.__statusLog = [];
new MutationObserver((records) => {
  for (const record of records) {
    const el = record.target;
    if (!el.classList || !el.classList.contains('message')) continue;
    window.__statusLog.push([el.querySelector('.message-body')?.textContent ?? '', el.dataset.status]);
  }
}).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-status'] });
"""


class ChatPage:
    def __init__(self, driver, base, name):
        self.driver, self.base, self.name = driver, base, name

    # ----------------------------------------------------------------- basics

    def open(self, path="/"):
        self.driver.get(self.base + path)

    def reload(self):
        self.driver.refresh()

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, condition, what, timeout=TIMEOUT):
        def attempt(_):
            try:
                return condition()
            except StaleElementReferenceException:
                return False
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(attempt, message=f"{self.name}: {what}")

    def css(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def visible(self, selector):
        found = self.all(selector)
        return found[0] if found and found[0].is_displayed() else None

    def click(self, selector, what=None):
        self.click_found(lambda: self.visible(selector), what or f"{selector} visible")

    def click_found(self, find, what):
        """Clicks what `find` returns, finding it again if a live re-render replaced it meanwhile."""
        def attempt():
            element = find()
            if not element:
                return False
            element.click()
            return True
        self.wait(attempt, what)

    def text(self, selector):
        found = self.all(selector)
        return found[0].text if found else ""

    def text_content(self, selector):
        """The text of an element, shown or not (a phone layout hides some)."""
        return self.js("return document.querySelector(arguments[0])?.textContent ?? ''", selector)

    def screenshot(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))

    def save_failure(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            self.driver.save_screenshot(str(folder / f"{self.name}.png"))
            logs = self.driver.get_log("browser")
            (folder / f"{self.name}-console.log").write_text("\n".join(json.dumps(entry) for entry in logs))
            # What the server holds for this user: the conversations with their members' markers.
            self.driver.set_script_timeout(10)
            server = self.driver.execute_async_script("""
                const done = arguments[arguments.length - 1];
                (async () => {
                  const list = await (await fetch('/api/conversations')).json();
                  const details = [];
                  for (const c of list.conversations || []) details.push(await (await fetch('/api/conversations/' + c.id)).json());
                  return { list, details, messages: document.documentElement.outerHTML.length };
                })().then(done, (e) => done(String(e)));""")
            (folder / f"{self.name}-server.json").write_text(json.dumps(server, indent=1))
            frames = self.js("return window.swiftchatTest ? window.swiftchatTest.frames() : []")
            (folder / f"{self.name}-frames.log").write_text("\n".join(json.dumps(entry) for entry in frames))
        except Exception as error:  # the browser may be the thing that failed
            (folder / f"{self.name}-error.txt").write_text(repr(error))

    # ----------------------------------------------------------------- session

    def stream(self, name):
        """'open', 'connecting', 'reconnecting' or 'closed' (data-chat-stream / data-notifications-stream)."""
        return self.js("return document.documentElement.dataset[arguments[0]] || ''", f"{name}Stream")

    def wait_streams(self, state):
        self.wait(lambda: self.stream("chat") == state and self.stream("notifications") == state,
                  f"both streams {state}")

    def sign_up(self, username, password=PASSWORD):
        self.click("#auth-tab-signup", "the Create account tab")
        panel = "#auth-panel-signup"
        self.css(f"{panel} input[name=username]").send_keys(username)
        self.css(f"{panel} input[name=email]").send_keys(f"{username}@example.com")
        self.css(f"{panel} input[name=password]").send_keys(password)
        self.css(f"{panel} button[type=submit]").click()
        self.wait_signed_in(username)

    def sign_in(self, login, password=PASSWORD, expect=None):
        self.click("#auth-tab-signin", "the Sign in tab")
        panel = "#auth-panel-signin"
        self.css(f"{panel} input[name=login]").send_keys(login)
        self.css(f"{panel} input[name=password]").send_keys(password)
        self.css(f"{panel} button[type=submit]").click()
        self.wait_signed_in(expect or login)

    def wait_signed_in(self, name):
        self.wait(lambda: self.text_content(".topbar .me-name") == name, f"signed in as {name}")
        self.wait_streams("open")

    def sign_out(self):
        self.click(".sign-out", "the Sign out button")
        self.wait(lambda: self.visible("#auth-title"), "the sign-in screen")

    # ----------------------------------------------------------------- people and conversations

    def show_tab(self, tab):
        self.click(f"#side-tab-{tab}", f"the {tab} tab")

    def find_person(self, username):
        """Searches People for a username; returns the result row."""
        self.show_tab("people")
        box = self.css("#people-search")
        box.clear()
        box.send_keys(username)
        selector = f'#people-results li.person[data-username="{username}"]'
        return self.wait(lambda: self.visible(selector), f"{username} in the search results")

    def message_person(self, username):
        self.find_person(username)
        self.click(f'#people-results li.person[data-username="{username}"] button[data-action=message]',
                   f"the Message button for {username}")
        self.wait(lambda: self.text("#chat-title") == username, f"the chat with {username} open")

    def conversation_titles(self):
        return self.js("return [...document.querySelectorAll('.conversation-item .conversation-title')]"
                       ".map((el) => el.firstChild ? el.firstChild.textContent : '')")

    def open_conversation(self, title):
        self.show_tab("chats")
        def item():
            for found in self.all(".conversation-item"):
                if found.find_element(By.CSS_SELECTOR, ".conversation-title").text.startswith(title):
                    return found
            return None
        self.click_found(item, f"“{title}” in the conversation list")
        self.wait(lambda: self.text("#chat-title") == title, f"“{title}” open")

    def unread_count(self, title):
        return self.js("""
            for (const item of document.querySelectorAll('.conversation-item')) {
              const name = item.querySelector('.conversation-title').firstChild.textContent;
              if (name === arguments[0]) {
                const badge = item.querySelector('.unread-count [aria-hidden]');
                return badge ? Number(badge.textContent) : 0;
              }
            }
            return null;""", title)

    def subtitle(self):
        return self.text("#chat-subtitle")

    def open_details(self):
        if not self.visible("#details"):
            self.click(".details-toggle", "the info button")
        self.wait(lambda: self.visible("#details .details-inner"), "the details panel")

    # ----------------------------------------------------------------- messages

    def composer(self):
        return self.wait(lambda: self.visible("#composer-input"), "the composer")

    def type_text(self, text):
        self.composer().send_keys(text)

    def send(self, text):
        box = self.composer()
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def messages(self):
        return self.js(MESSAGES_JS)

    def bodies(self):
        return [message["body"] for message in self.messages()]

    def wait_bodies(self, expected, timeout=TIMEOUT):
        self.wait(lambda: self.bodies() == expected, f"exactly these messages in order: {expected}", timeout)

    def status(self, body):
        for message in self.messages():
            if message["body"] == body:
                return message["status"]
        return None

    def wait_status(self, body, status, timeout=TIMEOUT):
        self.wait(lambda: self.status(body) == status, f"“{body}” marked {status}", timeout)

    def start_status_log(self):
        self.js(STATUS_LOG_JS)

    def status_log(self, body):
        """The statuses a message went through, in order, repeats folded."""
        seen = []
        for logged_body, status in self.js("return window.__statusLog || []"):
            if logged_body == body and (not seen or seen[-1] != status):
                seen.append(status)
        return seen

    # ----------------------------------------------------------------- test hooks

    def fake_answers(self, path, times, status, body=None, headers=None):
        """The page's own `fetch` answers its next `times` requests whose path ends with `path`
        with `status` (and `body`, `headers`) instead of asking the server: for answers a test
        cannot get from the stack. `faked_answers(path)` counts those given for the path."""
        self.js(FAKE_ANSWERS_JS, path, times, status, json.dumps(body or {}), headers or {})

    def faked_answers(self, path):
        return self.js("return (window.__fakedAnswers || {})[arguments[0]] || 0", path)

    def requests_to(self, path):
        """The requests the page made whose path starts with `path` (since the resource timing was
        last cleared): path, query, status and when each started and ended (ms since the page loaded).
        A made-up answer (`fake_answers`) is not among them."""
        return self.js(REQUESTS_JS, path)

    def drop_stream(self, name, hold_ms=0):
        """Closes a stream ('chat' or 'notifications') from the page as a network failure would,
        for an outage of at least hold_ms; the client reconnects by itself."""
        self.js("window.swiftchatTest.drop(arguments[0], arguments[1])", name, hold_ms)

    def release_stream(self, name):
        """Ends an outage begun by drop_stream now: the client reconnects at once."""
        self.js("window.swiftchatTest.release(arguments[0])", name)
