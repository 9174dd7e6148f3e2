"""Acceptance (issue #4): a real browser signs a user up for a passkey, signs
in with it, is asked to step up, and signs out — in Traditional Chinese and in
English. What the browser produced is cross-checked with py_webauthn, and a
screenshot of every step is kept under artifacts/browser/."""
import http.client
import json
import time
import urllib.parse

import pytest
from webauthn import verify_authentication_response, verify_registration_response
from webauthn.helpers import base64url_to_bytes

from conftest import add_virtual_authenticator

TEXT = {
    "zh-TW": {"enrol": "帳號註冊", "account": "帳號與驗證方式", "signin": "登入", "stepup": "需要再次驗證",
              "second": "第二道驗證", "failed": "帳號或驗證資料不正確。", "enrolment_note": "一次性註冊連結"},
    "en": {"enrol": "Account enrolment", "account": "Account and sign-in methods", "signin": "Sign in", "stepup": "Verify again",
           "second": "Second factor", "failed": "The user name or the credentials are not correct.",
           "enrolment_note": "one-time enrolment link"},
}
PASSWORD = "lantern orbit 碧潭 mosaic"


def form_fields(request):
    return {k: v[0] for k, v in urllib.parse.parse_qs(request.post_data).items()}


class OptionsRecorder:
    """Keeps the body of every ceremony-options response (read through a route,
    because the page navigates away before a response body could be read)."""

    def __init__(self, page):
        self.bodies = {}
        page.route("**/*passkey/options*", self._handle)

    def _handle(self, route):
        response = route.fetch()
        self.bodies[urllib.parse.urlparse(route.request.url).path] = response.json()
        route.fulfill(response=response)

    def public_key(self, path):
        return self.bodies.pop(path)["publicKey"]


def session_cookie(context):
    return next((c["value"] for c in context.cookies() if c["name"] == "__Host-menshen-session"), None)


def get_with_cookie(portal, path, cookie):
    """A bare GET carrying only the given session cookie (no redirects followed)."""
    url = urllib.parse.urlparse(portal)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", path, headers={"Cookie": f"__Host-menshen-session={cookie}"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, response.getheader("Location") or ""


@pytest.mark.parametrize("lang", ["zh-TW", "en"])
def test_passkey_signup_signin_stepup_signout(demo, chromium, artifacts, lang):
    t = TEXT[lang]
    user = "e2e-" + lang.lower()
    out = demo.cli("user", "add", user, "--name", "測試 Tester", "--group", "staff")
    assert f"added user {user}" in out
    link = demo.cli("user", "enrol-link", user).strip()
    path = urllib.parse.urlparse(link).path
    assert path.startswith("/enrol/")

    context = chromium.new_context(locale=lang, extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    add_virtual_authenticator(context, page)
    options = OptionsRecorder(page)
    shot = lambda name: page.screenshot(path=str(artifacts / f"{lang}-{name}.png"), full_page=True)

    # 1. The one-time enrolment link opens an enrolment session.
    page.goto(demo.portal + path)
    assert page.locator("h1").inner_text() == t["enrol"]
    assert page.locator("html").get_attribute("lang") == lang
    shot("01-enrol-link")
    page.click("#enrol-start")
    assert page.locator("h1").inner_text() == t["account"]
    assert t["enrolment_note"] in page.inner_text("main")

    # 2. A password, then a passkey (the registration is checked by py_webauthn too).
    page.fill("#new-password", PASSWORD)
    page.click("form[action^='/account/password'] button")
    assert page.locator(".ok").count() == 1
    page.fill("#passkey-label", f"virtual key {lang}")
    with page.expect_request(lambda r: r.url.endswith("/account/passkey") and r.method == "POST") as finish_info:
        page.click("#passkey-register")
    page.wait_for_url("**/account?*added=1*")
    assert f"virtual key {lang}" in page.inner_text("main")
    registration_options = options.public_key("/account/passkey/options")
    assert registration_options["authenticatorSelection"]["userVerification"] == "required"
    registered = verify_registration_response(
        credential=form_fields(finish_info.value)["credential"],
        expected_challenge=base64url_to_bytes(registration_options["challenge"]),
        expected_origin=demo.portal, expected_rp_id="localhost", require_user_verification=True)
    sign_count = registered.sign_count

    # 3. Recovery codes are shown once.
    page.click("form[action^='/account/recovery-codes'] button")
    assert page.locator("#recovery-codes li").count() == 10
    shot("02-enrolled")
    page.click("#finish-enrolment")
    assert page.locator("h1").inner_text() == t["signin"]
    assert session_cookie(context) is None

    # 4. Wrong password: the same generic message as for an unknown user.
    page.fill("#user", user)
    page.fill("#password", "not the password")
    page.click("#signin-submit")
    assert page.locator(".error").inner_text() == t["failed"]
    page.fill("#user", "nobody-" + user)
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    assert page.locator(".error").inner_text() == t["failed"]
    shot("03-sign-in")

    # 5. Sign in with the passkey, username-less (py_webauthn checks the assertion).
    with page.expect_request(lambda r: r.url.endswith("/signin/passkey") and r.method == "POST") as finish_info:
        page.click("#passkey-signin")
    page.wait_for_url(demo.portal + "/")
    assertion_options = options.public_key("/signin/passkey/options")
    verified = verify_authentication_response(
        credential=form_fields(finish_info.value)["credential"],
        expected_challenge=base64url_to_bytes(assertion_options["challenge"]), expected_rp_id="localhost",
        expected_origin=demo.portal, credential_public_key=registered.credential_public_key,
        credential_current_sign_count=sign_count, require_user_verification=True)
    assert verified.user_verified
    page.goto(demo.portal + "/account")
    assert page.locator("#account-user").inner_text() == user
    assert page.locator("#account-loa").inner_text() == "LoA 3"
    assert "hwk" in page.locator("#account-amr").inner_text().split()
    shot("04-signed-in")
    before = session_cookie(context)
    assert before

    # 6. Step-up: a decision that needs a factor proven within the last 2 s.
    time.sleep(3)
    page.goto(demo.portal + "/stepup?loa=3&max_age=2&return=%2Faccount")
    assert page.locator("h1").inner_text() == t["stepup"]
    shot("05-step-up")
    page.click("#passkey-stepup")
    page.wait_for_url(demo.portal + "/account")
    after = session_cookie(context)
    assert after and after != before, "step-up must issue a new session id"
    assert get_with_cookie(demo.portal, "/account", before)[0] == 303, "the pre-step-up id must be dead"
    assert get_with_cookie(demo.portal, "/account", after)[0] == 200
    # A level no method of this portal gives (LoA 4: the enrolment level caps every factor at 3) is said plainly,
    # with nothing offered that could only end in "too weak" — not even the hardware-bound passkey.
    page.goto(demo.portal + "/stepup?loa=4&return=%2Faccount")
    assert "LoA 4" in page.locator("#stepup-out-of-reach").inner_text()
    assert page.locator("#passkey-stepup").count() == 0
    assert session_cookie(context) == after
    # A satisfied requirement passes straight through; a foreign return URL is never followed.
    page.goto(demo.portal + "/stepup?loa=3&max_age=600&return=https%3A%2F%2Fevil.example%2F")
    assert page.url == demo.portal + "/"

    # 7. Sign out: the session is dead on the very next request.
    page.goto(demo.portal + "/account")
    page.click("#sign-out")
    assert page.locator("h1").inner_text() == t["signin"]
    assert get_with_cookie(demo.portal, "/account", after) == (303, "/signin?return=%2Faccount&lang=zh-TW")
    shot("06-signed-out")

    # 8. Password first, the passkey as the second factor.
    page.fill("#user", user)
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    assert page.locator("h1").inner_text() == t["second"]
    shot("07-second-factor")
    page.click("#passkey-second")
    page.wait_for_url(demo.portal + "/")
    page.goto(demo.portal + "/account")
    amr = page.locator("#account-amr").inner_text().split()
    assert "pwd" in amr and "hwk" in amr
    context.close()

    # 9. Every step left an event, and the chain is intact.
    status = demo.cli("store", "status")
    assert "event chain:     intact" in status


@pytest.mark.parametrize("lang", ["en"])
def test_totp_enrolment_and_sign_in(demo, chromium, artifacts, lang):
    """An authenticator app instead of a passkey: the QR page's key, fed to pyotp
    (an independent TOTP implementation), enrols the app and signs in; the same
    code is refused a second time."""
    import pyotp

    user = "e2e-totp"
    demo.cli("user", "add", user, "--group", "staff")
    path = urllib.parse.urlparse(demo.cli("user", "enrol-link", user).strip()).path
    context = chromium.new_context(locale=lang, extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    page.goto(demo.portal + path)
    page.click("#enrol-start")
    page.fill("#new-password", PASSWORD)
    page.click("form[action^='/account/password'] button")
    page.click("a[href^='/account/totp']")
    assert page.locator(".qr svg").count() == 1
    page.screenshot(path=str(artifacts / f"{lang}-08-totp-qr.png"), full_page=True)
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    page.fill("#code", "000000" if totp.now() != "000000" else "111111")
    page.click("form[action^='/account/totp'] button")
    assert page.locator(".error").count() == 1, "a wrong first code is refused"
    page.click("a[href^='/account/totp']")
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    page.fill("#code", totp.now())
    page.click("form[action^='/account/totp'] button")
    assert page.locator(".ok").count() == 1
    page.click("#finish-enrolment")

    # Sign in with password + TOTP. The code just used for enrolment cannot be replayed,
    # so wait for the next 30-second step.
    time.sleep(30 - time.time() % 30 + 1)
    code = totp.now()
    page.fill("#user", user)
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    page.fill("#code", code)
    page.click("form[action^='/signin/totp'] button")
    page.wait_for_url(demo.portal + "/")
    page.goto(demo.portal + "/account")
    assert page.locator("#account-loa").inner_text() == "LoA 3"
    assert "otp" in page.locator("#account-amr").inner_text().split()
    page.click("#sign-out")

    page.fill("#user", user)
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    page.fill("#code", code)
    page.click("form[action^='/signin/totp'] button")
    assert page.locator("h1").inner_text() == TEXT[lang]["second"], "a used TOTP code must not sign in again"
    assert page.locator(".error").count() == 1
    context.close()
