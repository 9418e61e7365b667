"""A group of three: created, renamed, one member removed; the removed member hears nothing more."""
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from stack import SCREENSHOTS, unique


def create_group(page, name, usernames):
    page.click(".new-group", "the New group button")
    dialog = page.wait(lambda: page.visible("dialog.dialog[open]"), "the New group dialog")
    dialog.find_element(By.CSS_SELECTOR, "input[name=name]").send_keys(name)
    search = dialog.find_element(By.CSS_SELECTOR, "input[name=query]")
    for username in usernames:
        search.clear()
        search.send_keys(username)

        def checkbox(username=username):
            for choice in dialog.find_elements(By.CSS_SELECTOR, ".choice"):
                if choice.find_element(By.CSS_SELECTOR, "label").text.endswith(f"@{username}"):
                    return choice.find_element(By.CSS_SELECTOR, "input[type=checkbox]")
            return None
        page.click_found(checkbox, f"{username} offered in the dialog")
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page.wait(lambda: page.text("#chat-title") == name, f"the group “{name}” open")


def member_row(page, username):
    for row in page.all("#details .member"):
        if row.find_element(By.CSS_SELECTOR, ".member-name").text.startswith(username):
            return row
    return None


def test_group_of_three_with_rename_and_removal(browser):
    names = {who: unique(f"{who}_") for who in ("alice", "bob", "carol")}
    pages = {who: browser(who) for who in names}
    for who, page in pages.items():
        page.sign_up(names[who])
    alice, bob, carol = pages["alice"], pages["bob"], pages["carol"]

    create_group(alice, "Weekend trip", [names["bob"], names["carol"]])
    alice.open_details()
    roles = """return Object.fromEntries([...document.querySelectorAll('#details .member')].map((row) =>
        [row.querySelector('.member-name').textContent, [row.dataset.role, row.querySelector('.admin-badge')?.textContent ?? null]]))"""
    alice.wait(lambda: len(alice.js(roles)) == 3, "three members listed")
    assert alice.js(roles) == {f"{names['alice']} (you)": ["admin", "Admin"], names["bob"]: ["member", None], names["carol"]: ["member", None]}

    # The group reaches the others live; all three talk.
    for page in (bob, carol):
        page.open_conversation("Weekend trip")
    alice.send("Hello both! Saturday?")
    bob.send("Saturday works.")
    for page in (alice, bob, carol):
        page.wait_bodies(["Hello both! Saturday?", "Saturday works."])
    # Both others have it on screen: read by all; the group shows how many.
    alice.wait_status("Hello both! Saturday?", "read")

    # Rename: everyone's header follows.
    field = alice.css("#details input[name=name]")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("Weekend trip ☀ Lisbon")
    alice.css("#details .inline-form button[type=submit]").click()
    for page in (alice, bob, carol):
        page.wait(lambda page=page: page.text("#chat-title") == "Weekend trip ☀ Lisbon", "the new group name")
    alice.screenshot(SCREENSHOTS / "group.png")

    # Carol is removed: she is told, and hears nothing from the group afterwards.
    alice.click_found(lambda: member_row(alice, names["carol"]).find_element(By.CSS_SELECTOR, "button.danger"),
                      "Remove for Carol")
    alice.wait(lambda: member_row(alice, names["carol"]) is None, "Carol gone from the member list")
    carol.wait(lambda: carol.visible(".chat-notice") and "no longer a member" in carol.text(".chat-notice"),
               "Carol told she is no longer a member")
    assert not carol.css("#composer-input").is_enabled()

    alice.send("Carol left, so it is the two of us.")
    bob.wait_bodies(["Hello both! Saturday?", "Saturday works.", "Carol left, so it is the two of us."])
    # Bob already has it; Carol's socket, had the server sent it, would have delivered it by now.
    # Her page must show no more than what she had, and after a reload the group is gone.
    assert carol.bodies() == ["Hello both! Saturday?", "Saturday works."]
    # After a reload the group is gone from her list, and the server agrees: it is not hers to see.
    carol.reload()
    carol.wait_signed_in(names["carol"])
    listed = carol.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/conversations').then((r) => r.json()).then((body) => done(body.conversations.map((c) => c.name)));""")
    assert "Weekend trip ☀ Lisbon" not in listed
    carol.show_tab("chats")
    assert "Weekend trip ☀ Lisbon" not in carol.conversation_titles()
