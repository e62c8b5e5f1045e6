"""AWS APIs on loopback for the Route 53 and EKS actuators: moto in server mode (ThreadedMotoServer
on 127.0.0.1, a free port), reached by the real boto3 clients over HTTP, optionally through
`FaultProxy`, which answers chosen requests with AWS error responses before forwarding the rest."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from moto.server import ThreadedMotoServer

Fault = Callable[[str, str], tuple[int, str, bytes] | None]
"""(method, path) -> (status, content type, body) to answer instead of forwarding, or None."""


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    """Fake credentials and no profile: nothing here may reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture(autouse=True)
def fresh_moto(moto_url):
    """Each test starts from empty backends (moto's own reset endpoint)."""
    import httpx

    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()


class FaultProxy:
    """Forwards to `upstream`, except requests for which `fault` returns a response; counts requests."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.fault: Fault = lambda method, path: None
        self.body_fault: Callable[[str, str, bytes], tuple[int, str, bytes] | None] | None = None
        """Like `fault`, seeing the body too (query-protocol APIs name the action there)."""
        self.requests: list[tuple[str, str]] = []
        self.faulted: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.requests.append((self.command, self.path))
                proxy.bodies.append(body)
                answer = (
                    proxy.body_fault(self.command, self.path, body)
                    if proxy.body_fault is not None
                    else proxy.fault(self.command, self.path)
                )
                if answer is not None:
                    proxy.faulted.append((self.command, self.path))
                    status, content_type, payload = answer
                else:
                    upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    reply = upstream.getresponse()
                    status, content_type, payload = reply.status, reply.getheader("Content-Type", ""), reply.read()
                    upstream.close()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_first(self, count: int, match: Callable[[str, str], bool], answer: tuple[int, str, bytes]) -> None:
        """Answer the first `count` requests that `match` with `answer`, then forward again."""
        left = [count]
        lock = threading.Lock()

        def fault(method: str, path: str) -> tuple[int, str, bytes] | None:
            with lock:
                if left[0] > 0 and match(method, path):
                    left[0] -= 1
                    return answer
            return None

        self.fault = fault

    def fail_first_action(self, count: int, action: str, answer: tuple[int, str, bytes]) -> None:
        """Answer the first `count` query-protocol requests for `action` (Auto Scaling, EC2) with `answer`."""
        left = [count]
        lock = threading.Lock()
        marker = f"Action={action}&".encode()

        def fault(method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
            with lock:
                if left[0] > 0 and method == "POST" and marker in body + b"&":
                    left[0] -= 1
                    return answer
            return None

        self.body_fault = fault

    def actions(self, action: str) -> int:
        """How many requests for query-protocol `action` went through (faulted ones included)."""
        return sum(1 for body in self.bodies if f"Action={action}&".encode() in body + b"&")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fault_proxy(moto_url) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_url)
    yield proxy
    proxy.close()


def route53_error(code: str, message: str, status: int = 400) -> tuple[int, str, bytes]:
    """Route 53's REST-XML error body, as botocore parses it."""
    body = (
        '<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()
    return status, "text/xml", body


def rest_json_error(code: str, message: str, status: int = 400) -> tuple[int, str, bytes]:
    """A REST-JSON service's error (EKS), with the code in the x-amzn-ErrorType header's place: the body."""
    import json

    return status, "application/json", json.dumps({"__type": code, "message": message}).encode()


def query_error(code: str, message: str, status: int = 400) -> tuple[int, str, bytes]:
    """A query-protocol service's error (Auto Scaling), as botocore parses it."""
    body = (
        '<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()
    return status, "text/xml", body
