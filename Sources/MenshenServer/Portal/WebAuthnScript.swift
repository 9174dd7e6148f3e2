/// The only script Menshen serves (`/static/webauthn.js`): the WebAuthn
/// ceremony, which cannot run without JavaScript. Everything else works
/// without it, and the Content-Security-Policy allows no inline script.
///
/// A button `[data-ceremony="create|get"]` with `data-options` and
/// `data-finish` URLs starts a ceremony: POST (form-encoded, CSRF token from
/// `<meta name="csrf-token">`) to get `{handle, publicKey}`, run
/// `navigator.credentials.create/get`, POST the credential as JSON text in
/// a form field, then follow `{redirect}` or show `{message}`.
enum WebAuthnScript {
    static let source = #"""
    "use strict";
    (function () {
      function toBytes(b64url) {
        var s = b64url.replace(/-/g, "+").replace(/_/g, "/");
        while (s.length % 4) s += "=";
        var bin = atob(s), out = new Uint8Array(bin.length);
        for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
        return out.buffer;
      }
      function toB64url(buf) {
        var bytes = new Uint8Array(buf), s = "";
        for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
        return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      }
      function decodeOptions(kind, o) {
        o.challenge = toBytes(o.challenge);
        if (kind === "create") {
          o.user.id = toBytes(o.user.id);
          (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        } else {
          (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        }
        return o;
      }
      function encodeCredential(kind, cred) {
        var r = cred.response, out = { id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response: {
          clientDataJSON: toB64url(r.clientDataJSON) },
          clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
          authenticatorAttachment: cred.authenticatorAttachment || undefined };
        if (kind === "create") {
          out.response.attestationObject = toB64url(r.attestationObject);
          out.response.transports = r.getTransports ? r.getTransports() : [];
        } else {
          out.response.authenticatorData = toB64url(r.authenticatorData);
          out.response.signature = toB64url(r.signature);
          if (r.userHandle) out.response.userHandle = toB64url(r.userHandle);
        }
        return out;
      }
      function say(text) {
        var el = document.getElementById("ceremony-status");
        if (el) el.textContent = text;
      }
      async function post(url, fields) {
        var body = new URLSearchParams(fields);
        var res = await fetch(url, { method: "POST", body: body, credentials: "same-origin",
                                     headers: { "Accept": "application/json" } });
        var json = {};
        try { json = await res.json(); } catch (e) { json = {}; }
        return { ok: res.ok, json: json };
      }
      async function ceremony(button) {
        var kind = button.dataset.ceremony;
        var csrf = document.querySelector('meta[name="csrf-token"]').content;
        var extra = { csrf: csrf, pending: button.dataset.pending || "", ret: button.dataset.return || "" };
        button.disabled = true;
        say(button.dataset.working || "…");
        try {
          var start = await post(button.dataset.options, extra);
          if (!start.ok) { say(start.json.message || button.dataset.failed || "Error"); return; }
          var publicKey = decodeOptions(kind, start.json.publicKey);
          var cred = kind === "create" ? await navigator.credentials.create({ publicKey: publicKey })
                                       : await navigator.credentials.get({ publicKey: publicKey });
          var label = document.getElementById("passkey-label");
          var done = await post(button.dataset.finish, { csrf: csrf, handle: start.json.handle, ret: extra.ret,
            credential: JSON.stringify(encodeCredential(kind, cred)), label: label ? label.value : "" });
          if (done.ok && done.json.redirect) { window.location.assign(done.json.redirect); return; }
          say(done.json.message || button.dataset.failed || "Error");
        } catch (e) {
          say(button.dataset.failed || String(e));
        } finally {
          button.disabled = false;
        }
      }
      document.addEventListener("DOMContentLoaded", function () {
        var buttons = document.querySelectorAll("[data-ceremony]");
        for (var i = 0; i < buttons.length; i++) {
          buttons[i].hidden = !window.PublicKeyCredential;
          buttons[i].addEventListener("click", function (ev) { ev.preventDefault(); ceremony(ev.currentTarget); });
        }
      });
    })();
    """#
}
