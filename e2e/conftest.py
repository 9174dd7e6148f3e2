"""Fixtures for the browser tests: the real `menshen demo` binary on free
ports in a fresh data directory, Debian's Chromium through Playwright with a
CDP virtual authenticator, and an artefacts folder for screenshots."""
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import time

import pytest
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / ".build" / "debug" / "menshen"
ARTIFACTS = pathlib.Path(os.environ.get("MENSHEN_ARTIFACTS", ROOT / "artifacts")) / "browser"
CHROMIUM = os.environ.get("MENSHEN_CHROMIUM", "/usr/bin/chromium")


class Demo:
    def __init__(self, data_dir: pathlib.Path):
        self.data_dir = data_dir
        self.log = open(data_dir.parent / "demo.log", "w+")
        self.process = subprocess.Popen(
            [str(BINARY), "demo", "--data", str(data_dir), "--listen", "127.0.0.1:0",
             "--admin-listen", "127.0.0.1:0", "--app-listen", "127.0.0.1:0",
             "--gateway-listen", "127.0.0.1:0"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=data_dir.parent)
        deadline = time.time() + 60
        self.portal = None
        while time.time() < deadline:
            self.log.seek(0)
            match = re.search(r"Portal:\s+(http://localhost:\d+)/", self.log.read())
            if match:
                self.portal = match.group(1)
                break
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        if not self.portal:
            self.log.seek(0)
            raise RuntimeError("menshen demo did not start:\n" + self.log.read())

    def cli(self, *args: str) -> str:
        result = subprocess.run([str(BINARY), *args, "--data", str(self.data_dir)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"menshen {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def demo():
    assert BINARY.exists(), f"{BINARY} missing: run `swift build` first"
    with tempfile.TemporaryDirectory(prefix="menshen-e2e-") as tmp:
        d = Demo(pathlib.Path(tmp) / "menshen-data")
        yield d
        d.stop()


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def add_virtual_authenticator(context, page):
    """A CTAP2 platform authenticator with resident keys and user verification,
    answering every ceremony without UI (Chrome DevTools Protocol)."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]
