"""The gateway inside the contract: its own errors in the JSON error shape, the security headers
on every answer, no version, and websocket upgrades that never ride a reused keep-alive connection."""
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from rawws import upgrade
from stack import GATEWAY, api, error_of, sign_up_api, start_services, stop_services

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def assert_no_version(response):
    server = response.headers.get("Server", "")
    assert not re.search(r"\d", server), f"the gateway names its version: {server!r}"


@pytest.mark.parametrize("path", ["/api/unknown", "/api/", "/ws/unknown", "/nope", "/js/", "/js/missing.js", "/.git/config"])
def test_unknown_paths_are_json_404(path):
    response = requests.get(GATEWAY + path, timeout=10)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert_no_version(response)


def test_body_over_1_mib_is_json_413():
    response = requests.post(GATEWAY + "/api/auth/signup", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_wrong_method_on_the_web_client_is_json_405():
    response = requests.post(GATEWAY + "/", data=b"x", timeout=10)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_a_service_that_is_down_is_json_503():
    stop_services("users")
    try:
        response = requests.get(GATEWAY + "/api/users?query=a", timeout=10)
        assert response.status_code == 503
        assert error_of(response)["code"] == "service_unavailable"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert_no_version(response)
    finally:
        start_services("users")  # waits until it is ready
    # The gateway serves users as soon as it is ready again: it marked no instance down meanwhile.
    assert requests.get(GATEWAY + "/api/users", timeout=10).status_code == 401


def test_web_client_headers():
    for path in ("/", "/index.html", "/js/main.js", "/css/app.css"):
        response = requests.get(GATEWAY + path, timeout=10)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == CSP, path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "no-referrer", path
        assert "no-cache" in response.headers["Cache-Control"], path
        assert_no_version(response)
    assert requests.get(GATEWAY + "/", timeout=10).headers["Content-Type"].startswith("text/html")
    assert requests.get(GATEWAY + "/js/main.js", timeout=10).headers["Content-Type"].startswith("text/javascript")
    page = requests.get(GATEWAY + "/", timeout=10).text
    assert "<script>" not in page and " style=" not in page  # nothing inline for the CSP to refuse


def test_nosniff_on_proxied_answers_once():
    user, token = sign_up_api()
    answers = [
        api("GET", "/api/auth/currentuser"),                      # 401 from auth
        api("GET", "/api/auth/currentuser", token),               # 200 from auth
        api("GET", "/api/users?query=a", token),                  # users
        api("GET", "/api/conversations", token),                  # messages
        api("GET", "/api/search?q=x", token),                     # messages (planned route or its 404)
        api("GET", "/api/notifications", token),                  # notifications
        requests.get(GATEWAY + "/ws/chat", timeout=10),           # socket-handler, not an upgrade
    ]
    for response in answers:
        values = [v for k, v in response.raw.headers.items() if k.lower() == "x-content-type-options"]
        assert values == ["nosniff"], (response.url, response.status_code, values)
        assert_no_version(response)


def test_refused_websocket_upgrades_are_json():
    for path in ("/ws/chat", "/ws/notifications"):
        answer = upgrade(GATEWAY, path, {"Origin": GATEWAY})  # no token
        try:
            assert answer.status == 401, (path, answer.status, answer.rest[:200])
            assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
            body = answer.rest
            length = int(answer.headers.get("content-length", len(body)))
            while len(body) < length:
                chunk = answer.sock.recv(4096)
                if not chunk:
                    break
                body += chunk
            assert json.loads(body)["error"]["code"], body
        finally:
            answer.close()


def test_100_of_100_notification_upgrades_right_after_rest_traffic():
    # A few users, so that sockets still being torn down never count against the per-user limit.
    tokens = [sign_up_api()[1] for _ in range(5)]
    session = requests.Session()

    def rest(n):
        return session.get(GATEWAY + "/api/notifications?limit=5", headers={"Authorization": f"Bearer {tokens[n % 5]}"}, timeout=10).status_code

    statuses = []
    for round_ in range(10):
        with ThreadPoolExecutor(max_workers=8) as pool:  # fills the gateway's keep-alive pool
            assert set(pool.map(rest, range(40))) == {200}
        for n in range(10):
            assert rest(n) == 200  # REST on a kept-alive upstream connection right before the upgrade
            answer = upgrade(GATEWAY, "/ws/notifications", {"Origin": GATEWAY, "Authorization": f"Bearer {tokens[n % 5]}"})
            statuses.append(answer.status)
            answer.close()
    assert statuses.count(101) == 100, {status: statuses.count(status) for status in set(statuses)}
