#!/usr/bin/env python3
"""A small OpenID Provider for Menshen's relying-party tests.

Everything that makes it an OpenID Provider comes from Authlib, a maintained
OAuth 2.0 / OpenID Connect server library (PyPI `authlib`, keys through
`joserfc`): the authorization-code grant, PKCE (RFC 7636), client
authentication (client_secret_basic, client_secret_post, none), the id_token
(OpenID Connect Core §3.1.3: iss, aud, exp, iat, auth_time, nonce, acr, amr,
at_hash), the RFC 9207 `iss` authorization-response parameter, and the
discovery metadata validator. This file only supplies what the library asks
its host to supply: storage of clients, codes and users (in memory), the login
page, the signing keys and the HTTP routes.

Test-only extras, all under /control/ (loopback only, no authentication):
  POST /control/rotate        new signing keys (new kid); JSON {"keep_old": bool}
  POST /control/users         add or replace a test user (JSON, see USERS below; "auth_time_offset": N
                              makes its auth_time N seconds older than the sign-in; "step_up_acr": A
                              is its acr when the client's acr_values ask for A)
  POST /control/pad           pad discovery / JWKS to N bytes: {"discovery": N, "jwks": N}
  POST /control/cache         Cache-Control for discovery / JWKS: {"jwks": "max-age=120"}
  GET  /control/stats         how often discovery, JWKS and the token endpoint were fetched

Usage: op.py --port PORT [--redirect-uri URI ...]
PORT 0 lets the system choose; the chosen port is printed as
`OIDC-OP READY port=N issuer=http://127.0.0.1:N` once the server accepts
connections. The process stops on SIGTERM/SIGINT, and with --exit-on-stdin-eof
also when its standard input closes (so a test that dies leaves nothing behind).
"""

import argparse
import hmac
import html
import json
import os
import secrets
import signal
import sys
import threading
import time

# The library refuses plain http unless told otherwise; this provider only
# ever listens on the loopback interface, for tests.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

from authlib.integrations.flask_oauth2 import AuthorizationServer  # noqa: E402
from authlib.oauth2.rfc6749 import ClientMixin  # noqa: E402
from authlib.oauth2.rfc6749 import grants  # noqa: E402
from authlib.oauth2.rfc6749.errors import InvalidRequestError  # noqa: E402
from authlib.oauth2.rfc6749.errors import OAuth2Error  # noqa: E402
from authlib.oauth2.rfc7636 import CodeChallenge  # noqa: E402
from authlib.oauth2.rfc9207 import IssuerParameter  # noqa: E402
from authlib.oidc.core import UserInfo  # noqa: E402
from authlib.oidc.core.grants import OpenIDCode  # noqa: E402
from authlib.oidc.core.models import AuthorizationCodeMixin  # noqa: E402
from authlib.oidc.discovery import OpenIDProviderMetadata  # noqa: E402
from flask import Flask, Response, jsonify, request  # noqa: E402
from joserfc.jwk import ECKey, RSAKey  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

LOCK = threading.RLock()
STATE = {
    "issuer": None,
    "stats": {"discovery": 0, "jwks": 0, "token": 0, "authorize": 0},
    "pad": {"discovery": 0, "jwks": 0},
    "cache_control": {"discovery": None, "jwks": None},
}


# --- Signing keys ------------------------------------------------------------------


class Keys:
    """The provider's signing keys: one RSA (RS256) and one P-256 (ES256) key in
    use, plus the retired public keys still published after a rotation."""

    def __init__(self):
        self.generation = 0
        self.current = {}
        self.retired = []
        self._make()

    def _make(self):
        self.generation += 1
        tag = f"{self.generation}-{secrets.token_hex(4)}"
        self.current = {
            "RS256": RSAKey.generate_key(2048, parameters={"kid": f"rs-{tag}", "use": "sig", "alg": "RS256"}),
            "ES256": ECKey.generate_key("P-256", parameters={"kid": f"es-{tag}", "use": "sig", "alg": "ES256"}),
        }

    def rotate(self, keep_old):
        with LOCK:
            old = list(self.current.values())
            self._make()
            self.retired = (self.retired + old) if keep_old else []
            return {alg: key.kid for alg, key in self.current.items()}

    def private_key(self, alg):
        with LOCK:
            return self.current[alg]

    def jwks(self):
        with LOCK:
            keys = list(self.current.values()) + self.retired
            return {"keys": [key.as_dict(private=False) for key in keys]}


KEYS = Keys()


# --- Clients, users, codes ---------------------------------------------------------------


class Client(ClientMixin):
    def __init__(self, client_id, secret, auth_method, alg, redirect_uris):
        self.client_id = client_id
        self.client_secret = secret
        self.auth_method = auth_method
        self.id_token_signed_response_alg = alg
        self.redirect_uris = redirect_uris

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        allowed = {"openid", "profile", "email", "groups"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris  # exact match only

    def check_client_secret(self, client_secret):
        return self.client_secret is not None and hmac.compare_digest(
            self.client_secret.encode(), (client_secret or "").encode()
        )

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.auth_method if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


CLIENTS = {}

# username → user record. Tests add their own through /control/users.
USERS = {
    "alice": {
        "password": "alice-password",
        "sub": "alice-0001",
        "name": "Alice Chen",
        "email": "alice@partner.example",
        "groups": ["vendors", "maintenance"],
        "acr": None,
        "amr": ["pwd"],
    },
    "bob": {
        "password": "bob-password",
        "sub": "bob-0002",
        "name": "Bob Lin",
        "email": "bob@partner.example",
        "groups": ["staff"],
        "acr": "phrh",
        "amr": ["hwk", "pin", "mfa"],
    },
}


class User:
    def __init__(self, username, record):
        self.username = username
        self.record = record

    def get_user_id(self):
        return self.record["sub"]


class AuthCode(AuthorizationCodeMixin):
    def __init__(self, code, client_id, redirect_uri, scope, user, data):
        self.code = code
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.user = user
        self.nonce = data.get("nonce")
        self.code_challenge = data.get("code_challenge")
        self.code_challenge_method = data.get("code_challenge_method")
        # auth_time_offset (test users only): an authentication that seems older, as from a provider that
        # answered out of its own session instead of asking the user again.
        self.auth_time = int(time.time()) - int(user.record.get("auth_time_offset") or 0)
        self.created = time.time()
        # The acr_values the client asked for (space-separated, in order of preference).
        self.requested_acr = (data.get("acr_values") or "").split()

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        # step_up_acr (test users only): the stronger authentication this user passes when a client asks for it
        # with acr_values, as providers such as Keycloak choose the flow's strength from them; otherwise the
        # user's usual acr.
        step_up = self.user.record.get("step_up_acr")
        if step_up and step_up in self.requested_acr:
            return step_up
        return self.user.record.get("acr")

    def get_amr(self):
        return self.user.record.get("amr")


CODES = {}


# --- Library extension points ---------------------------------------------------------


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code, req):
        with LOCK:
            CODES[code] = AuthCode(code, req.client.client_id, req.payload.redirect_uri, req.scope, req.user,
                                   req.payload.data)

    def query_authorization_code(self, code, client):
        with LOCK:
            item = CODES.get(code)
        if item and item.client_id == client.client_id and time.time() - item.created < 600:
            return item
        return None

    def delete_authorization_code(self, authorization_code):
        with LOCK:
            CODES.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class S256Only(CodeChallenge):
    """PKCE required of every client, S256 only (RFC 9700)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        if not grant.request.payload.data.get("code_challenge"):
            raise InvalidRequestError("PKCE (code_challenge) is required.")
        if grant.request.payload.data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is accepted.")
        return super().validate_code_challenge(grant, redirect_uri)


class OIDCCode(OpenIDCode):
    def exists_nonce(self, nonce, req):
        with LOCK:
            return any(c.nonce == nonce and c.client_id == req.payload.client_id for c in CODES.values())

    def resolve_client_private_key(self, client):
        return KEYS.private_key(client.id_token_signed_response_alg)

    def get_encode_header(self, client):
        alg = client.id_token_signed_response_alg
        return {"alg": alg, "kid": KEYS.private_key(alg).kid, "typ": "JWT"}

    def get_client_claims(self, client):
        return {"iss": STATE["issuer"], "aud": [client.client_id]}

    def generate_user_info(self, user, scope):
        r = user.record
        info = UserInfo(sub=r["sub"])
        scopes = scope.split()
        if "profile" in scopes:
            info["name"] = r.get("name")
        if "email" in scopes:
            info["email"] = r.get("email")
            info["email_verified"] = True
        if "groups" in scopes:
            info["groups"] = r.get("groups", [])
        return info


class Issuer(IssuerParameter):
    def get_issuer(self):
        return STATE["issuer"]


# --- Flask application ---------------------------------------------------------------------

app = Flask(__name__)
server = AuthorizationServer(app, query_client=lambda cid: CLIENTS.get(cid), save_token=lambda token, req: None)
server.register_grant(CodeGrant, [S256Only(required=True), OIDCCode(require_nonce=True)])
server.register_extension(Issuer())


def metadata():
    iss = STATE["issuer"]
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "jwks_uri": f"{iss}/jwks",
        "scopes_supported": ["openid", "profile", "email", "groups"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": ["phr", "phrh"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
                             "name", "email", "email_verified", "groups"],
        "authorization_response_iss_parameter_supported": True,
    }


def padded(document, size, cache_control):
    body = json.dumps(document)
    if size > len(body):
        document = dict(document, x_padding="x" * (size - len(body)))
        body = json.dumps(document)
    response = Response(body, mimetype="application/json")
    if cache_control:
        response.headers["Cache-Control"] = cache_control
    return response


@app.get("/.well-known/openid-configuration")
def discovery():
    with LOCK:
        STATE["stats"]["discovery"] += 1
        size = STATE["pad"]["discovery"]
        cache_control = STATE["cache_control"]["discovery"]
    return padded(metadata(), size, cache_control)


@app.get("/jwks")
def jwks():
    with LOCK:
        STATE["stats"]["jwks"] += 1
        size = STATE["pad"]["jwks"]
        cache_control = STATE["cache_control"]["jwks"]
    return padded(KEYS.jwks(), size, cache_control)


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test OP sign-in</title></head>
<body><h1>Sign in to the test OpenID Provider</h1>
<p>{message}</p>
<form method="post" action="{action}">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password"></label>
<button name="decision" value="allow">Sign in</button>
<button name="decision" value="deny">Cancel</button>
</form></body></html>
"""


def login_page(message, status):
    action = html.escape("/authorize?" + request.query_string.decode("ascii", "replace"), quote=True)
    return Response(LOGIN_PAGE.format(message=html.escape(message), action=action), status=status,
                    mimetype="text/html")


@app.route("/authorize", methods=["GET", "POST"])
def authorize():
    with LOCK:
        STATE["stats"]["authorize"] += 1
    try:
        server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        # Errors before the redirect URI is trusted are shown, never redirected.
        if error.redirect_uri:
            return server.handle_error_response(None, error)
        return Response(f"invalid authorization request: {error.error}: {error.description}\n", status=400,
                        mimetype="text/plain")
    if request.method == "GET":
        return login_page("", 200)
    if request.form.get("decision") == "deny":
        return server.create_authorization_response(grant_user=None)
    username = request.form.get("username", "")
    with LOCK:
        record = USERS.get(username)
    if record is None or not hmac.compare_digest(record["password"].encode(),
                                                 request.form.get("password", "").encode()):
        return login_page("Wrong username or password.", 401)
    return server.create_authorization_response(grant_user=User(username, record))


@app.post("/token")
def token():
    with LOCK:
        STATE["stats"]["token"] += 1
    return server.create_token_response()


@app.post("/control/rotate")
def control_rotate():
    body = request.get_json(silent=True) or {}
    kids = KEYS.rotate(bool(body.get("keep_old", True)))
    return jsonify({"kids": kids})


@app.post("/control/users")
def control_users():
    body = request.get_json(force=True)
    username = body["username"]
    record = {
        "password": body["password"],
        "sub": body.get("sub", username),
        "name": body.get("name", username),
        "email": body.get("email", f"{username}@op.example"),
        "groups": body.get("groups", []),
        "acr": body.get("acr"),
        "step_up_acr": body.get("step_up_acr"),
        "amr": body.get("amr"),
        "auth_time_offset": body.get("auth_time_offset", 0),
    }
    with LOCK:
        USERS[username] = record
    return jsonify({"ok": True})


@app.post("/control/pad")
def control_pad():
    body = request.get_json(force=True)
    with LOCK:
        for name in ("discovery", "jwks"):
            if name in body:
                STATE["pad"][name] = int(body[name])
    return jsonify({"ok": True})


@app.post("/control/cache")
def control_cache():
    body = request.get_json(force=True)
    with LOCK:
        for name in ("discovery", "jwks"):
            if name in body:
                STATE["cache_control"][name] = body[name]
    return jsonify({"ok": True})


@app.get("/control/stats")
def control_stats():
    with LOCK:
        return jsonify(dict(STATE["stats"], kids={alg: k.kid for alg, k in KEYS.current.items()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--redirect-uri", action="append", default=[],
                        help="registered redirect URI of the test clients (repeatable)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when standard input closes (a test harness holds it open)")
    args = parser.parse_args()
    redirect_uris = args.redirect_uri or ["https://menshen.test/oidc/callback"]
    for client in (
        Client("menshen-basic", "secret-basic-0123456789", "client_secret_basic", "RS256", redirect_uris),
        Client("menshen-post", "secret-post-0123456789", "client_secret_post", "ES256", redirect_uris),
        Client("menshen-public", None, "none", "RS256", redirect_uris),
    ):
        CLIENTS[client.client_id] = client

    httpd = make_server("127.0.0.1", args.port, app, threaded=True)
    port = httpd.server_port
    STATE["issuer"] = f"http://127.0.0.1:{port}"
    # The library's own validator checks the metadata this provider publishes.
    OpenIDProviderMetadata(metadata()).validate()

    def stop(*_):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(1024):
                pass
        except Exception:
            pass
        stop()

    if args.exit_on_stdin_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()

    print(f"OIDC-OP READY port={port} issuer={STATE['issuer']}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
