#!/usr/bin/env python3
"""A small webhook receiver for trying playbooks (and for the playbook tests).

Usage: webhook-receiver.py PORT OUTFILE [--mode ok|hang|garbage]

Listens on 127.0.0.1:PORT (0 picks a free port) and prints "listening PORT"
once bound. Every POST is appended to OUTFILE as one JSON line:
{"time": <arrival, seconds since the epoch>, "path": ..., "body": <parsed JSON, or the text>}.

Modes: ok answers 200 {"ok": true}; hang reads the request and never answers
(a SIEM that hangs); garbage answers bytes that are not HTTP and closes.
Stops on SIGTERM/SIGINT.
"""
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


def main() -> None:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    port, outfile = int(sys.argv[1]), sys.argv[2]
    mode = "ok"
    if len(sys.argv) >= 5 and sys.argv[3] == "--mode":
        mode = sys.argv[4]
    lock = threading.Lock()
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            arrived = time.time()
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            raw = self.rfile.read(length).decode("utf-8", "replace")
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            with lock, open(outfile, "a", encoding="utf-8") as f:
                f.write(json.dumps({"time": arrived, "path": self.path, "body": body}) + "\n")
            if mode == "hang":
                stop.wait()
                return
            if mode == "garbage":
                self.wfile.write(b"\x00\xffthis is not HTTP\r\n\r\n")
                self.close_connection = True
                return
            answer = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def shutdown(*_):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    # A parent may have blocked these signals (the mask is inherited): take them back.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
