"""Where the stack under test is, and how to stop and start its services (by pid, through
infra/run.sh, exactly as `make run` and `make test` do)."""
import base64
import errno
import json
import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = os.environ.get("SWIFTCHAT_GATEWAY_URL") or f"http://127.0.0.1:{os.environ.get('SWIFTCHAT_GATEWAY_PORT', '8080')}"
# Relative folders are the repository root's, as for the shell scripts (pytest runs in Tests/Browser).
STACK_DIR = ROOT / (os.environ.get("SWIFTCHAT_STACK_DIR") or ".stack")
# Where the tests put the screenshots they take: the stack's folder, so a test run leaves the
# working tree as it was; SWIFTCHAT_SCREENSHOTS_DIR=docs/screenshots refreshes the README's.
SCREENSHOTS = ROOT / (os.environ.get("SWIFTCHAT_SCREENSHOTS_DIR") or STACK_DIR / "screenshots")
FAILURES = STACK_DIR / "log" / "browser-failures"
PASSWORD = "correct horse battery"


def unique(prefix):
    """A fresh username: prefix + 8 random lowercase characters."""
    return prefix + base64.b32encode(os.urandom(5)).decode().lower()


def service_pid(name, instance=1):
    """The pid infra/run.sh recorded for instance `instance` (from 1) of a service."""
    file = f"service-{name}.pid" if instance == 1 else f"service-{name}-{instance}.pid"
    try:
        return int((STACK_DIR / "run" / file).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def kill_service(name, sig=signal.SIGKILL, timeout=15, instance=1):
    """Kills a service started by infra/run.sh (by its recorded pid) and waits until it is gone."""
    pid = service_pid(name, instance)
    assert pid and _alive(pid), f"{name} is not running (no live pid in {STACK_DIR}/run)"
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"{name} (pid {pid}) did not exit"
        time.sleep(0.05)


def kill_every_instance(name, sig=signal.SIGKILL):
    """Kills every instance of a service that infra/run.sh runs (one, or two with REPLICAS=2)."""
    instance = 1
    while service_pid(name, instance) is not None:
        if _alive(service_pid(name, instance)):
            kill_service(name, sig, instance=instance)
        instance += 1


# The variable (infra/ports.env, exported by infra/browser-tests.sh) naming each service's port.
SERVICE_PORTS = {
    "auth": "SWIFTCHAT_AUTH_PORT", "users": "SWIFTCHAT_USERS_PORT", "messages": "SWIFTCHAT_MESSAGES_PORT",
    "socket-handler": "SWIFTCHAT_SOCKET_PORT", "notifications": "SWIFTCHAT_NOTIFICATIONS_PORT",
}


@contextmanager
def standing_in_for(name, status, body, headers=None):
    """While every instance of service `name` is down (kill them first), a server on its first
    instance's port answers every request with one made-up answer: how the gateway and the page
    meet an answer the real service gives only rarely (auth asking a session check to wait, say)."""
    port = int(os.environ[SERVICE_PORTS[name]])
    payload = json.dumps(body).encode()

    class Answer(BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))  # the request's body, read whole
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for header, value in (headers or {}).items():
                self.send_header(header, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, *args):
            pass

    # The killed instance's last threads may still hold its listening socket for a moment.
    deadline = time.monotonic() + 10
    while True:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Answer)
            break
        except OSError as error:
            if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def run_sh(*args):
    """infra/run.sh with this process's environment (ports, stack folder, SWIFTCHAT_BIN_DIR)."""
    subprocess.run(["bash", str(ROOT / "infra" / "run.sh"), *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start_services(*names):
    run_sh("services", *names)


def stop_services(*names):
    run_sh("stop-services", *names)


def api(method, path, token=None, body=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, GATEWAY + path, headers=headers, json=body, timeout=10, **kwargs)


def sign_up_api(prefix="api_"):
    """A new user through the gateway; returns (user, access token)."""
    username = unique(prefix)
    response = api("POST", "/api/auth/signup", body={"username": username, "email": f"{username}@example.com", "password": PASSWORD})
    assert response.status_code == 201, response.text
    data = response.json()
    return data["user"], data["accessToken"]


def error_of(response):
    """The contract's error object of a response (asserting the shape on the way)."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    data = json.loads(response.text)
    assert set(data) == {"error"}, data
    error = data["error"]
    assert isinstance(error.get("code"), str) and error["code"].replace("_", "").isalnum() and error["code"].islower(), error
    assert isinstance(error.get("message"), str) and error["message"], error
    return error
