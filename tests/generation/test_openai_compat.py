"""OpenAICompatGenerator against a real local HTTP server that plays a scripted OpenAI-compatible API."""

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from execrl.generation import BackendError, SamplingParams, make_backend
from execrl.generation.openai_compat import OpenAICompatGenerator

pytest.importorskip("httpx")


class FakeServer:
    """Answers like vLLM unless ``script(server, path, body)`` returns ``(status, headers, body)``.

    Records every request as ``(time, method, path, body, headers)`` and the most requests it
    ever had in flight at once.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[float, str, str, dict, dict]] = []
        self.script = None
        self.honour_n = True
        self.delay = 0.0
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._answer("GET", None)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._answer("POST", body)

            def _answer(self, method, body):
                with server.lock:
                    server.requests.append((time.monotonic(), method, self.path, body, dict(self.headers)))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    status, headers, answer = (server.script and server.script(server, self.path, body)) or server.default(
                        self.path, body
                    )
                finally:
                    with server.lock:
                        server.in_flight -= 1
                data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def default(self, path, body):
        if path == "/v1/models":
            return 200, {}, {"object": "list", "data": [{"id": "served-model", "object": "model"}]}
        n = body.get("n", 1) if self.honour_n else 1
        said = body["prompt"] if path == "/v1/completions" else body["messages"][-1]["content"]
        texts = [f"{said}|{i}|seed={body.get('seed')} STOP tail" for i in range(n)]
        if path == "/v1/completions":
            choices = [{"index": i, "text": t, "finish_reason": "length"} for i, t in enumerate(texts)]
        else:
            choices = [{"index": i, "message": {"role": "assistant", "content": t}} for i, t in enumerate(texts)]
        return 200, {}, {"object": "text_completion", "choices": choices[::-1]}  # any order: index decides

    def posts(self):
        return [r for r in self.requests if r[1] == "POST"]


@pytest.fixture
def server():
    s = FakeServer()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _gen(server, **kw):
    kw = {"backoff": 0.001, "max_retries": 3, "timeout": 10, **kw}
    return OpenAICompatGenerator(server.url, "m", **kw)


def test_completions_endpoint_with_n(server):
    out = _gen(server).generate(["a", "b"], SamplingParams(n=3, temperature=0.5, seed=1, max_new_tokens=7))
    assert out == [[f"{p}|{i}|seed=1 STOP tail" for i in range(3)] for p in "ab"]
    posts = server.posts()  # concurrent requests: any arrival order
    assert len(posts) == 2 and {p[2] for p in posts} == {"/v1/completions"}
    bodies = sorted((p[3] for p in posts), key=lambda b: b["prompt"])
    assert bodies[0] == {"model": "m", "prompt": "a", "max_tokens": 7, "temperature": 0.5, "n": 3, "seed": 1}
    assert bodies[1]["prompt"] == "b"


def test_chat_endpoint_for_messages_and_for_chat_true(server):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert _gen(server).generate([messages], SamplingParams()) == [["hi|0|seed=None STOP tail"]]
    assert _gen(server, chat=True).generate(["yo"], SamplingParams(top_p=0.9, temperature=1)) == [
        ["yo|0|seed=None STOP tail"]
    ]
    (_, _, p1, b1, _), (_, _, p2, b2, _) = server.posts()
    assert (p1, b1["messages"]) == ("/v1/chat/completions", messages)
    assert (p2, b2["messages"], b2["top_p"]) == ("/v1/chat/completions", [{"role": "user", "content": "yo"}], 0.9)
    with pytest.raises(ValueError, match="chat"):
        _gen(server, chat=False).generate([messages], SamplingParams())


def test_server_ignoring_n_gets_repeated_requests_with_distinct_seeds(server):
    server.honour_n = False
    out = _gen(server).generate(["a"], SamplingParams(n=3, temperature=1.0, seed=10))
    assert out == [["a|0|seed=10 STOP tail", "a|0|seed=11 STOP tail", "a|0|seed=12 STOP tail"]]
    assert [r[3].get("n") for r in server.posts()] == [3, 2, None]


def test_greedy_sends_one_request_and_repeats_it(server):
    out = _gen(server).generate(["a"], SamplingParams(n=3, top_p=0.5))
    assert out == [["a|0|seed=None STOP tail"] * 3]
    [(_, _, _, body, _)] = server.posts()
    assert "n" not in body and "top_p" not in body and body["temperature"] == 0


def test_stop_strings_cut_the_text_and_at_most_four_are_sent(server):
    stop = ["zzz", "yyy", "xxx", "www", " STOP"]
    assert _gen(server).generate(["a"], SamplingParams(stop=stop)) == [["a|0|seed=None"]]
    assert server.posts()[0][3]["stop"] == stop[:4]


def test_429_waits_what_retry_after_says(server):
    def script(s, path, body):
        if len(s.posts()) == 1:
            return 429, {"Retry-After": "0.2"}, {"error": {"message": "slow down"}}
        return None

    server.script = script
    assert _gen(server).generate(["a"], SamplingParams()) == [["a|0|seed=None STOP tail"]]
    t0, t1 = (r[0] for r in server.posts())
    assert t1 - t0 >= 0.2  # the backoff alone would have waited about a millisecond


def test_500_twice_then_success_backs_off_exponentially(server):
    server.script = lambda s, path, body: (500, {}, "oops") if len(s.posts()) <= 2 else None
    assert _gen(server, backoff=0.05).generate(["a"], SamplingParams()) == [["a|0|seed=None STOP tail"]]
    t = [r[0] for r in server.posts()]
    assert len(t) == 3
    assert t[1] - t[0] >= 0.025 and t[2] - t[1] >= 0.05  # backoff * 2**attempt * jitter in [0.5, 1]


def test_persistent_failure_is_one_clear_line(server):
    server.script = lambda s, path, body: (503, {}, {"object": "error", "message": "model is\nloading"})
    with pytest.raises(BackendError) as err:
        _gen(server, max_retries=2).generate(["a"], SamplingParams())
    assert str(err.value) == f"POST {server.url}/completions failed after 3 attempts: HTTP 503: model is loading"
    assert len(server.posts()) == 3


def test_client_errors_are_not_retried(server):
    server.script = lambda s, path, body: (400, {}, {"error": {"message": "max_tokens is too large"}})
    with pytest.raises(BackendError, match="HTTP 400: max_tokens is too large$"):
        _gen(server).generate(["a"], SamplingParams())
    assert len(server.posts()) == 1


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:  # a port that was free a moment ago, with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = OpenAICompatGenerator(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff=0.001)
    with pytest.raises(BackendError, match=r"^POST .* failed after 2 attempts: ConnectError"):
        gen.generate(["a"], SamplingParams())


def test_timeouts_are_retried(server):
    server.delay = 0.3
    with pytest.raises(BackendError, match="failed after 2 attempts: ReadTimeout"):
        _gen(server, max_retries=1, timeout=0.05).generate(["a"], SamplingParams())


def test_concurrency_limit_is_respected(server):
    server.delay = 0.05
    out = _gen(server, concurrency=2).generate([str(i) for i in range(8)], SamplingParams())
    assert [o[0].split("|")[0] for o in out] == [str(i) for i in range(8)]
    assert server.max_in_flight == 2


def test_model_discovery_api_key_and_bare_base_url(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    gen = OpenAICompatGenerator(server.url.removesuffix("/v1"), backoff=0.001)
    assert gen.base_url == server.url
    gen.generate(["a"], SamplingParams())
    (_, m1, p1, _, _), (_, m2, p2, body, headers) = server.requests
    assert (m1, p1, m2, p2, body["model"]) == ("GET", "/v1/models", "POST", "/v1/completions", "served-model")
    assert headers["Authorization"] == "Bearer sk-test"


def test_works_inside_a_running_event_loop(server):
    async def main():
        return _gen(server).generate(["a"], SamplingParams())

    assert asyncio.run(main()) == [["a|0|seed=None STOP tail"]]


def test_make_backend_openai_spec(server):
    gen = make_backend(f"openai:{server.url}#my-model", backoff=0.001)
    assert isinstance(gen, OpenAICompatGenerator) and (gen.base_url, gen.model) == (server.url, "my-model")
    assert make_backend(f"openai:{server.url}").model is None
    assert make_backend(f"openai:{server.url}", model="kw-model").model == "kw-model"


def test_bad_base_url():
    with pytest.raises(ValueError, match="http"):
        OpenAICompatGenerator("localhost:8000", "m")
