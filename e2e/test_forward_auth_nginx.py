"""nginx in front of Menshen's forward-auth endpoint (`auth_request`), over
plain HTTP, against the real binary: `menshen serve --config` with a routes
file, a stand-in application (nginx, echoing the identity headers it got),
and nginx's front door rendered from e2e/nginx/forward-auth.conf.template by
scripts/nginx-throwaway.

Checked: no session → 302 to the portal's sign-in with the original URL; a
signed-in staff user → 200 and the application sees X-Menshen-User etc. from
Menshen, never the ones the client sent; a user the policy does not allow →
403; a forbid rule in the routes file's policies → 403 for writes at LoA 1;
sign-out and `menshen user disable` → the very next request is sent to
sign-in again. Skips only when nginx is not installed.
"""
from http.client import HTTPConnection
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / ".build" / "debug" / "menshen"
THROWAWAY = ROOT / "scripts" / "nginx-throwaway"
TEMPLATE = ROOT / "e2e" / "nginx" / "forward-auth.conf.template"
PASSWORD = "quiet harbour 淡水 lantern"
SESSION = "__Host-menshen-session"


def nginx_binary():
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (Debian: nginx-light); scripts/test installs it")


def free_ports(n):
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def exchange(method, port, path, headers=None, body=None, host="localhost"):
    """One exchange with 127.0.0.1:port, Host localhost:port, no redirects followed."""
    conn = HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        all_headers = {"Host": f"{host}:{port}", **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
    finally:
        conn.close()


class Visitor:
    """A browser-like visitor of the portal (cookies kept by hand: they are
    `__Host-`/Secure, which cookie jars will not send over plain HTTP)."""

    def __init__(self, port):
        self.port = port
        self.origin = f"http://localhost:{port}"
        self.cookies = {}

    def cookie_header(self):
        return "; ".join(f"{k}={v}" for k, v in sorted(self.cookies.items()))

    def absorb(self, r):
        for line in r.header("set-cookie"):
            pair = line.split(";", 1)[0]
            if "=" not in pair:
                continue
            name, value = pair.split("=", 1)
            if "max-age=0" in line.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def get(self, path):
        r = exchange("GET", self.port, path, {"Cookie": self.cookie_header()} if self.cookies else {})
        self.absorb(r)
        return r

    def post(self, path, fields):
        page = self.get("/signin")
        if page.status == 303:        # signed in: /signin redirects
            page = self.get("/account")
        match = re.search(r'name="csrf-token" content="([^"]*)"', page.body)
        assert match, f"no CSRF token on the portal page: {page}"
        body = urllib.parse.urlencode([*fields, ("csrf", match.group(1))])
        r = exchange("POST", self.port, path, {"Cookie": self.cookie_header(), "Origin": self.origin,
                                            "Content-Type": "application/x-www-form-urlencoded"}, body.encode())
        self.absorb(r)
        return r


class Stack:
    def __init__(self, tmp):
        self.tmp = tmp
        (self.portal, self.gateway, self.admin, self.upstream, self.proxy, self.front) = free_ports(6)
        self.config = tmp / "menshen.yaml"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MENSHEN_")}
        self.menshen = None
        self.nginx_dir = tmp / "nginx"
        self.nginx_started = False

    def write_config(self):
        (self.tmp / "data").mkdir()
        self.config.write_text(f"""\
organisation:
  name: Forward-auth test
server:
  listen: "127.0.0.1:{self.portal}"
  public_url: "http://localhost:{self.portal}"
gateway:
  listen: "127.0.0.1:{self.gateway}"
  public_url: "http://localhost:{self.gateway}"
  routes_file: routes.yaml
admin:
  listen: "127.0.0.1:{self.admin}"
store:
  driver: sqlite
  sqlite:
    path: "{self.tmp / 'data' / 'menshen.sqlite'}"
log:
  level: info
  format: text
""")
        (self.tmp / "routes.yaml").write_text(f"""\
policies: [extra.cedar]
routes:
  - id: reports
    name: Reports
    host: localhost
    path_prefix: /app
    upstreams: ["http://127.0.0.1:{self.upstream}"]
    classification: internal
    require:
      min_loa: 1
      groups: [staff]
  - id: statements
    name: Statements (read-only)
    host: localhost
    path_prefix: /ro
    upstreams: ["http://127.0.0.1:{self.upstream}"]
    classification: internal
    require:
      min_loa: 1
      groups: [staff]
      read_only: true
""")
        (self.tmp / "extra.cedar").write_text(
            '// Changes to the reports need more than a password.\n'
            'forbid (principal, action == Action::"write", resource == Application::"reports")\n'
            '  when { context.session.loa < 2 };\n')

    def log_tail(self):
        path = self.tmp / "menshen.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def start_menshen(self):
        assert BINARY.exists(), f"{BINARY} missing: run `swift build` first"
        check = subprocess.run([str(BINARY), "config", "check", str(self.config)], capture_output=True, text=True,
                               env=self.env, timeout=60)
        assert check.returncode == 0, f"menshen config check refused the configuration:\n{check.stdout}{check.stderr}"
        log = open(self.tmp / "menshen.log", "w")
        self.menshen = subprocess.Popen([str(BINARY), "serve", "--config", str(self.config)], stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.tmp, env=self.env)
        log.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.menshen.poll() is None, f"menshen serve exited ({self.menshen.returncode}):\n{self.log_tail()}"
            try:
                if (exchange("GET", self.admin, "/readyz", host="127.0.0.1").status == 200
                        and exchange("GET", self.portal, "/signin").status == 200):
                    socket.create_connection(("127.0.0.1", self.gateway), timeout=1).close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"menshen serve did not become ready in 60 s:\n{self.log_tail()}")

    def start_nginx(self):
        r = subprocess.run([str(THROWAWAY), "start", str(self.nginx_dir), str(TEMPLATE),
                            f"UPSTREAM_PORT={self.upstream}", f"PROXY_PORT={self.proxy}", f"FRONT_PORT={self.front}",
                            f"GATEWAY_PORT={self.gateway}", "WORKERS=1"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "NGINX READY" in r.stdout, f"nginx did not start:\n{r.stdout}{r.stderr}"
        self.nginx_started = True

    def cli(self, *args):
        r = subprocess.run([str(BINARY), *args, "--config", str(self.config)], capture_output=True, text=True,
                           env=self.env, timeout=60)
        assert r.returncode == 0, f"menshen {' '.join(args)} failed ({r.returncode}): {r.stderr}{r.stdout}"
        return r.stdout

    def enrol(self, user, *groups):
        self.cli("user", "add", user, *[a for g in groups for a in ("--group", g)])
        link = self.cli("user", "enrol-link", user).strip()
        v = Visitor(self.portal)
        start = v.post(urllib.parse.urlparse(link).path, [])
        assert start.status == 303, f"enrolment link refused: {start}"
        assert v.post("/account/password", [("password", PASSWORD)]).status == 200
        assert v.post("/account/finish", []).status == 303

    def sign_in(self, user):
        v = Visitor(self.portal)
        r = v.post("/signin", [("user", user), ("password", PASSWORD)])
        assert r.status == 303 and SESSION in v.cookies, f"sign-in as {user} failed: {r}"
        return v

    def front_get(self, path, token=None, extra=None, method="GET", body=None):
        headers = {"Accept": "text/html", **(extra or {})}
        if token:
            headers["Cookie"] = f"theme=dark; {SESSION}={token}"
        return exchange(method, self.front, path, headers, body)

    def stop(self):
        if self.nginx_started:
            subprocess.run([str(THROWAWAY), "stop", str(self.nginx_dir)], timeout=60)
        if self.menshen and self.menshen.poll() is None:
            self.menshen.send_signal(signal.SIGTERM)
            try:
                self.menshen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.menshen.kill()
                self.menshen.wait()


_setup_failure = []


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if _setup_failure:         # do not start everything again for each test
        pytest.fail(f"the forward-auth stack did not come up (see the first error): {_setup_failure[0]}", pytrace=False)
    s = Stack(tmp_path_factory.mktemp("forward-auth"))
    try:
        try:
            s.write_config()
            s.start_nginx()        # the application first: it needs nothing from Menshen
            assert exchange("GET", s.upstream, "/app/x").status == 200
            s.start_menshen()
            s.cli("group", "add", "staff", "--name", "Staff 行員")
            s.enrol("alice", "staff")
            s.enrol("bob")         # in no group: the route's policy does not allow him
        except BaseException as error:
            _setup_failure.append(str(error).splitlines()[0] if str(error) else repr(error))
            raise
        yield s
    finally:
        s.stop()


def test_no_session_redirects_to_portal_signin(stack):
    original = f"http://localhost:{stack.front}/app/reports?q=1&x=%2F"
    for token in (None, "A" * 43):          # none, and one Menshen never issued
        r = stack.front_get("/app/reports?q=1&x=%2F", token)
        assert r.status == 302, r
        location = urllib.parse.urlsplit(r.header("location")[0])
        assert (location.scheme, location.netloc, location.path) == ("http", f"localhost:{stack.portal}", "/signin"), r
        assert urllib.parse.parse_qs(location.query)["return"] == [original], r


def test_staff_user_reaches_the_application_with_identity_from_menshen(stack):
    token = stack.sign_in("alice").cookies[SESSION]
    r = stack.front_get("/app/reports", token)
    assert r.status == 200, r
    assert "user=alice " in r.body and "loa=1 " in r.body and "staff" in r.body.split("groups=")[1].split()[0], r.body
    # Identity headers sent by the client never reach the application: nginx
    # replaces them with Menshen's answer (or removes them when Menshen sent none).
    forged = stack.front_get("/app/reports", token, {"X-Menshen-User": "admin", "X-Menshen-Roles": "superuser",
                                                     "X-Menshen-LoA": "4", "X-Menshen-Groups": "admins"})
    assert forged.status == 200, forged
    assert "user=alice " in forged.body and "loa=1 " in forged.body, forged.body
    assert "admin" not in forged.body and "superuser" not in forged.body and "loa=4" not in forged.body, forged.body


def test_through_menshens_own_proxy_the_application_never_receives_the_session_cookie(stack):
    # The session cookie opens every application: Menshen's reverse proxy keeps it (and the platform's other
    # cookies) out of what the application receives; the application's own cookies pass.
    token = stack.sign_in("alice").cookies[SESSION]
    r = exchange("GET", stack.gateway, "/app/echo-cookie", {"Cookie": f"theme=dark; {SESSION}={token}; lang=zh-TW"})
    assert r.status == 200, r
    assert r.body == "cookie=[theme=dark; lang=zh-TW]\n", r.body
    only_ours = exchange("GET", stack.gateway, "/app/echo-cookie", {"Cookie": f"{SESSION}={token}"})
    assert only_ours.status == 200 and only_ours.body == "cookie=[]\n", only_ours


def test_through_nginx_the_application_never_receives_the_session_cookie(stack):
    # Forward-auth: nginx forwards the request, with the cookie line Menshen's answer gives it.
    token = stack.sign_in("alice").cookies[SESSION]
    r = stack.front_get("/app/echo-cookie", token)     # sends "theme=dark; <session>"
    assert r.status == 200, r
    assert r.body == "cookie=[theme=dark]\n", r.body
    api = exchange("GET", stack.front, "/app/reports", {"Accept": "application/json"})
    assert api.status == 401 and not api.header("location"), api   # an API client keeps its 401


def test_forged_identity_without_session_is_not_let_in(stack):
    r = stack.front_get("/app/reports", None, {"X-Menshen-User": "alice", "X-Menshen-LoA": "4"})
    assert r.status == 302, r


def test_user_not_allowed_by_policy_is_forbidden(stack):
    token = stack.sign_in("bob").cookies[SESSION]
    r = stack.front_get("/app/reports", token)
    assert r.status == 403, r
    assert "user=" not in r.body
    # nginx keeps only the status of Menshen's answer: the request id of the decision event reaches the
    # user through X-Menshen-Request-Id and the template's page.
    request_id = (r.header("x-menshen-request-id") or [""])[0]
    assert len(request_id) >= 8 and request_id in r.body, r


def test_forbid_rule_from_routes_file_denies_writes_at_loa_1(stack):
    token = stack.sign_in("alice").cookies[SESSION]
    assert stack.front_get("/app/reports", token).status == 200
    r = stack.front_get("/app/reports", token, {"Content-Type": "application/x-www-form-urlencoded"},
                        method="POST", body=b"title=x")
    assert r.status == 403, r


def test_a_websocket_on_a_read_only_route_is_refused_through_nginx(stack):
    # nginx drops `Upgrade` and `Connection` from the auth sub-request (hop-by-hop); the handshake's
    # Sec-WebSocket-* fields reach Menshen, which refuses a WebSocket on a read_only route as its own proxy does.
    token = stack.sign_in("alice").cookies[SESSION]
    assert stack.front_get("/ro/statements", token).status == 200
    handshake = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                 "Sec-WebSocket-Version": "13"}
    r = stack.front_get("/ro/live", token, handshake)
    assert r.status == 403, r
    assert "user=" not in r.body


def test_sign_out_ends_access_on_the_very_next_request(stack):
    visitor = stack.sign_in("alice")
    token = visitor.cookies[SESSION]
    assert stack.front_get("/app/reports", token).status == 200
    assert visitor.post("/signout", []).status == 303
    r = stack.front_get("/app/reports", token)
    assert r.status == 302 and "/signin?" in r.header("location")[0], r


def test_disabling_the_user_ends_access_on_the_very_next_request(stack):
    token = stack.sign_in("alice").cookies[SESSION]
    assert stack.front_get("/app/reports", token).status == 200
    stack.cli("user", "disable", "alice")
    r = stack.front_get("/app/reports", token)
    assert r.status == 302 and "/signin?" in r.header("location")[0], r
