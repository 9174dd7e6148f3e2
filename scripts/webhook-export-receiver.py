#!/usr/bin/env python3
"""An HTTPS receiver for the webhook export (and its tests).

Usage: webhook-export-receiver.py PORT OUTFILE [--cert PEM --key PEM] [--client-ca PEM] [--answers FILE]

Listens on 127.0.0.1:PORT (0 picks a free port) over TLS with the given certificate (plain
HTTP without --cert) and prints "listening PORT" once bound. With --client-ca a client
certificate from that CA is required (mutual TLS). Every POST is appended to OUTFILE as one
JSON line: {"time": <arrival, seconds since the epoch>, "path", "headers": {lower-case name:
value}, "body": <the raw body as text>, "answer": <what it was answered>}; a TLS handshake
that fails is recorded as {"time", "tls_error": <text>}.

Answers: each request takes the first line of the --answers file (removing it); when the file
is absent or empty it answers "ok". A line is one of
  ok        200 {"ok": true}
  NNN       that status (e.g. 500, 400) with a short body
  429:S     429 with Retry-After: S (seconds, or an HTTP date)
  garbage   bytes that are not HTTP, then close
  hang      never answer (keep the connection open)
  drop      close the connection without answering (the body was read: a lost acknowledgement)
  short     200 with Content-Length 1000 but only 10 bytes of body, then close (cut mid-answer)
  big       200 with an 8 MiB body (a flood the exporter must not read whole)
Stops on SIGTERM/SIGINT.
"""
import json
import socket
import ssl
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 << 20


def main() -> None:
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    port, outfile = int(args[0]), args[1]
    opts = dict(zip(args[2::2], args[3::2]))
    lock = threading.Lock()
    stop = threading.Event()
    context = None
    if "--cert" in opts:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(opts["--cert"], opts["--key"])
        if "--client-ca" in opts:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(opts["--client-ca"])

    def record(entry: dict) -> None:
        with lock, open(outfile, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def next_answer() -> str:
        path = opts.get("--answers")
        if not path:
            return "ok"
        with lock:
            try:
                with open(path, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                return "ok"
            lines = [line for line in lines if line.strip()]
            if not lines:
                return "ok"
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines[1:]))
            return lines[0].strip()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            arrived = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            raw = self.rfile.read(length).decode("utf-8", "replace")
            answer = next_answer()
            record({"time": arrived, "path": self.path, "answer": answer, "body": raw,
                    "headers": {k.lower(): v for k, v in self.headers.items()}})
            if answer == "hang":
                stop.wait()
                self.close_connection = True
                return
            if answer in ("garbage", "drop"):
                if answer == "garbage":
                    self.wfile.write(b"\x00\xffthis is not HTTP\r\n\r\n")
                    self.wfile.flush()
                self.close_connection = True
                return
            if answer in ("short", "big"):
                size = 1000 if answer == "short" else 8 << 20
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    if answer == "short":
                        self.wfile.write(b'{"ok": tru')
                    else:
                        chunk = b"x" * 65536
                        for _ in range(size // len(chunk)):
                            self.wfile.write(chunk)
                except OSError:
                    pass
                self.close_connection = True
                return
            status, retry_after = 200, None
            if answer.startswith("429:"):
                status, retry_after = 429, answer[4:]
            elif answer != "ok":
                status = int(answer)
            body = b'{"ok": true}' if status == 200 else b'{"error": "test answer"}'
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def finish_request(self, request, client_address):
            # The TLS handshake happens here, in the connection's own thread, so a slow or failing client holds up no other.
            if context is not None:
                request.settimeout(10)
                try:
                    request = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as error:
                    record({"time": time.time(), "tls_error": str(error)})
                    return
                request.settimeout(None)
            self.RequestHandlerClass(request, client_address, self)

        def handle_error(self, request, client_address):
            pass

    server = Server(("127.0.0.1", port), Handler)

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
