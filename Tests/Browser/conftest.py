"""Fixtures: headless Debian Chromium sessions, each with its own profile (its own cookies)."""
import os
import shutil
import tempfile
import warnings

import pytest
from selenium import webdriver
from selenium.common.exceptions import InvalidSessionIdException
from selenium.webdriver.chrome.service import Service

from chat_page import ChatPage
from stack import FAILURES, GATEWAY

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
DESKTOP = (1280, 800)
PHONE = (360, 740)


def new_driver(size, profile):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--lang=en-US",
        "--force-device-scale-factor=1",
        # Several browsers side by side: none of them may be throttled as a background window.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_window_size(*size)
    # The page's test hooks (window.swiftchatTest) are off unless the profile turns them on.
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                           {"source": "localStorage.setItem('swiftchat.testHooks', '1');"})
    return driver


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser(request):
    """browser(name, phone=False) → a ChatPage in a fresh Chromium with its own profile."""
    pages, profiles = [], []

    def open_browser(name, phone=False):
        # A Chromium that dies while it starts, before the test has done anything with it, is not
        # the system under test: it is started once more (seen once in a full run).
        for attempt in (1, 2):
            profile = tempfile.mkdtemp(prefix=f"swiftchat-{name}-")
            profiles.append(profile)
            page = ChatPage(new_driver(PHONE if phone else DESKTOP, profile), GATEWAY, name)
            pages.append(page)  # quit after the test, its failure saved, whatever happens
            try:
                page.open()
            except InvalidSessionIdException:
                if attempt == 2:
                    raise
                pages.remove(page)
                try:
                    page.driver.quit()  # its chromedriver
                except Exception:
                    pass
                warnings.warn(f"{name}'s Chromium died while starting; started once more")
                continue
            return page

    yield open_browser

    failed = getattr(request.node, "report_call", None) is not None and request.node.report_call.failed
    script_errors = []
    for page in pages:
        if failed:
            page.save_failure(FAILURES / request.node.name)
        else:
            # An uncaught exception in the page is a failure even when every check passed.
            script_errors += [f"{page.name}: {entry['message']}" for entry in page.driver.get_log("browser")
                              if entry["level"] == "SEVERE" and entry.get("source") == "javascript"]
        page.driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)
    assert not script_errors, "uncaught errors in the page:\n" + "\n".join(script_errors)
