"""The openai backend's retry and fleet logic against a real HTTP server on loopback that misbehaves on purpose."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from stepdpo_bench.samplers import SamplerError, SamplingParams

pytest.importorskip("httpx")
from stepdpo_bench.samplers.openai import OpenAISampler


class Flaky(BaseHTTPRequestHandler):
    """Answers 429, then 503, then a valid completion; records every request body and path."""

    script: ClassVar[list[int]] = []
    seen: ClassVar[list[tuple[int, str, dict]]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.server.server_address[1], self.path, body))
        status = type(self).script.pop(0) if type(self).script else 200
        if status != 200:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"error": "busy"}')
            return
        if self.path.endswith("/chat/completions"):
            choice = {"message": {"role": "assistant", "content": "The answer is: 7"}, "finish_reason": "stop"}
        else:
            choice = {"text": f"seed {body['seed']}: The answer is: 7", "finish_reason": "length"}
        out = json.dumps({"choices": [choice], "usage": {"completion_tokens": 5}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def servers():
    Flaky.seen = []
    started = []
    for _ in range(2):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
    yield [f"http://127.0.0.1:{s.server_address[1]}/v1" for s in started]
    for s in started:
        s.shutdown()


def test_retries_429_and_5xx_then_succeeds(servers):
    Flaky.script = [429, 503]
    s = OpenAISampler("m", servers[:1], max_retries=3, backoff=0.01, concurrency=1)
    (out,) = s.generate(["Q: 3+4?"], SamplingParams(max_tokens=5, seed=11))
    assert out[0].text == "seed 11: The answer is: 7" and out[0].n_tokens == 5 and out[0].finish_reason == "length"
    assert len(Flaky.seen) == 3


def test_gives_up_with_a_clear_message(servers):
    Flaky.script = [503] * 10
    s = OpenAISampler("m", servers[:1], max_retries=2, backoff=0.01)
    with pytest.raises(SamplerError, match=r"no answer after 3 attempts.*HTTP 503"):
        s.generate(["x"], SamplingParams(max_tokens=5))


def test_client_errors_are_not_retried(servers):
    Flaky.script = [400]
    s = OpenAISampler("m", servers[:1], max_retries=5, backoff=0.01)
    with pytest.raises(SamplerError, match="server refused the request"):
        s.generate(["x"], SamplingParams(max_tokens=5))
    assert len(Flaky.seen) == 1


def test_fleet_round_robin_n_samples_and_chat(servers):
    Flaky.script = []
    s = OpenAISampler("m", servers, concurrency=4, backoff=0.01)
    outs = s.generate(["a", "b"], SamplingParams(max_tokens=5, n=3, seed=100, stop=("\n\n",)))
    assert [[c.text.split(":")[0] for c in cs] for cs in outs] == [["seed 100", "seed 101", "seed 102"]] * 2
    assert {b["stop"][0] for _, _, b in Flaky.seen} == {"\n\n"}
    assert {path for _, path, _ in Flaky.seen} == {"/v1/completions"}
    ports = [port for port, _, _ in Flaky.seen]
    assert len(set(ports)) == 2 and ports.count(ports[0]) == 3  # six requests spread evenly over two servers
    (chat,) = s.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=5))
    assert chat[0].text == "The answer is: 7" and Flaky.seen[-1][1] == "/v1/chat/completions"


def test_every_sampling_value_and_every_stop_string_is_sent(servers):
    """A server left to its defaults applies the model's generation_config (vLLM's --generation-config auto): so
    top_k, min_p and repetition_penalty go out explicitly, neutral ones too, and no stop string is dropped (the
    sampler kept the first 4 before)."""
    Flaky.script = []
    s = OpenAISampler("m", servers[:1], concurrency=1, backoff=0.01)
    stops = ("\n\n", "Q:", "###", "</s>", "<|im_end|>", "Problem:")
    s.generate(["a"], SamplingParams(max_tokens=5, stop=stops))
    s.generate(["b"], SamplingParams(max_tokens=5, temperature=0.6, top_k=20, min_p=0.05, repetition_penalty=1.1))
    neutral, chosen = (b for _, _, b in Flaky.seen if b.get("prompt") in ("a", "b"))
    assert neutral["stop"] == list(stops)
    assert (neutral["top_k"], neutral["min_p"], neutral["repetition_penalty"]) == (-1, 0.0, 1.0)
    assert (chosen["top_k"], chosen["min_p"], chosen["repetition_penalty"], chosen["temperature"]) == (
        20,
        0.05,
        1.1,
        0.6,
    )
