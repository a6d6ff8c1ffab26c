"""`gembed serve` as its clients use it: the official `openai` SDK (float and
base64, `dimensions`, batches, `extra_body` tasks), a TEI-style client on
/embed, 64 concurrent one-text clients sharing forward passes, a table of bad
requests (each a 4xx with a message, the server still fine after), a client
that disconnects, and a graceful drain on SIGTERM.

Every server is started here on 127.0.0.1 with a free port (--port 0), on a
small synthetic Q8_0 model (6 layers, n_embd 256, so 128 is a real Matryoshka
dim). Vectors are compared with `gembed embed` (cosine >= 0.99999)."""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

API_KEY = "test-key-0123"
TEXTS = ["hello world", "The quick brown fox jumps over the lazy dog.", "zebra crossing", "Was ist das?"]
AUTH = {"Authorization": f"Bearer {API_KEY}"}
JSON = {"Content-Type": "application/json"}


def run(cmd, stdin: bytes = b"") -> bytes:
    r = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout


@pytest.fixture(scope="module")
def model(gembed, tokenizer_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "e256-q8_0.gguf"
    run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny", "--embd", "256",
         "--ff", "512", "--head-dim", "128", "--type", "q8_0", "--seed", "5"])
    return path


def cli_vectors(gembed, model, texts, *args) -> np.ndarray:
    """What `gembed embed` gives for these texts (one JSON string per line)."""
    stdin = "".join(json.dumps(t) + "\n" for t in texts).encode()
    out = run([gembed, "embed", "--model", model, "--jsonl", "--threads", "2", *args], stdin)
    return np.array([json.loads(line) for line in out.decode().splitlines()], dtype=np.float32)


def assert_same_vectors(got, want):
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape
    cos = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert np.all(cos >= 0.99999), cos


class Server:
    """One `gembed serve` process on 127.0.0.1 and a free port."""

    def __init__(self, gembed, model, *extra):
        self.proc = subprocess.Popen(
            [str(gembed), "serve", "--model", str(model), "--port", "0", "--threads", "2", *map(str, extra)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._read_line(60)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"no ready line from gembed serve: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_line = line

    def _read_line(self, timeout: float) -> str:
        end = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return buf.decode(errors="replace")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")

    def conn(self, timeout: float = 60) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout: float = 60):
        """(status, headers, parsed JSON or text) on a fresh connection."""
        c = self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            ctype = r.getheader("Content-Type", "")
            return r.status, dict(r.getheaders()), (json.loads(data) if "json" in ctype else data.decode())
        finally:
            c.close()

    def post(self, path, body, headers=None, **kw):
        return self.request("POST", path, body, {**JSON, **AUTH, **(headers or {})}, **kw)

    def metrics(self) -> dict[str, float]:
        status, _, text = self.request("GET", "/metrics", headers=AUTH)
        assert status == 200
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture(scope="module")
def server(gembed, model):
    s = Server(gembed, model, "--api-key", API_KEY, "--served-model-name", "gembed-test", "--request-timeout", "2",
               "--read-timeout", "1")
    yield s
    assert s.stop() == 0


def good_request_works(server):
    status, _, body = server.post("/v1/embeddings", {"input": "still here"})
    assert status == 200, body
    assert len(body["data"][0]["embedding"]) == 256


# ---- the official clients -----------------------------------------------------------


def test_ready_line_port_0_and_loopback(server):
    assert server.port > 0 and server.ready_line.startswith("gembed serve: listening on http://127.0.0.1:")
    status, _, body = server.request("GET", "/health")
    assert status == 200 and body == {"status": "ok"}


def test_openai_sdk(gembed, model, server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)
    want = cli_vectors(gembed, model, TEXTS)

    # A batch as floats; usage counts the real tokens ([BOS] text [EOS]).
    r = client.embeddings.create(model="gembed-test", input=TEXTS, encoding_format="float")
    assert r.model == "gembed-test" and r.object == "list"
    assert [d.index for d in r.data] == list(range(len(TEXTS)))
    floats = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert_same_vectors(floats, want)
    counts = run([gembed, "tokenize", "--model", model, "--jsonl", "--add-special"],
                 "".join(json.dumps(t) + "\n" for t in TEXTS).encode()).decode().splitlines()
    assert r.usage.prompt_tokens == r.usage.total_tokens == sum(len(json.loads(c)) for c in counts)

    # The SDK's default asks for base64 (little-endian float32) and decodes it: the same bits.
    r64 = client.embeddings.create(model="gembed-test", input=TEXTS)
    np.testing.assert_array_equal(np.array([d.embedding for d in r64.data], dtype=np.float32), floats)
    raw = client.embeddings.with_raw_response.create(model="gembed-test", input="zebra crossing",
                                                     encoding_format="base64")
    b64 = json.loads(raw.text)["data"][0]["embedding"]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(b64), dtype="<f4"), floats[2])

    # One string; Matryoshka dimensions; the task prompts through extra_body.
    one = client.embeddings.create(model="m", input="hello world")
    assert len(one.data) == 1 and one.model == "m"
    assert_same_vectors([one.data[0].embedding], want[:1])
    r128 = client.embeddings.create(model="m", input=TEXTS, dimensions=128)
    assert_same_vectors([d.embedding for d in r128.data], cli_vectors(gembed, model, TEXTS, "--dim", "128"))
    rq = client.embeddings.create(model="m", input=TEXTS, extra_body={"task": "query"})
    want_q = cli_vectors(gembed, model, TEXTS, "--task", "query")
    assert_same_vectors([d.embedding for d in rq.data], want_q)
    assert not np.allclose(want_q, want)  # the prompt changed the vectors
    rd = client.embeddings.create(model="m", input=TEXTS[:2], dimensions=128,
                                  extra_body={"task": "document", "title": "Animals"})
    assert_same_vectors([d.embedding for d in rd.data],
                        cli_vectors(gembed, model, TEXTS[:2], "--task", "document", "--title", "Animals",
                                    "--dim", "128"))
    rp = client.embeddings.create(model="m", input=TEXTS[:1], extra_body={"prompt": "custom: "})
    assert_same_vectors([rp.data[0].embedding], cli_vectors(gembed, model, TEXTS[:1], "--prompt", "custom: "))

    # Token-id inputs are the same sequences the texts become.
    ids = [json.loads(c) for c in counts]
    rt = client.embeddings.create(model="m", input=ids, encoding_format="float")
    assert_same_vectors([d.embedding for d in rt.data], want)

    # Errors come back as the SDK's typed exceptions with the server's message.
    with pytest.raises(openai.BadRequestError, match="allowed: 256, 128"):
        client.embeddings.create(model="m", input="x", dimensions=300)
    with pytest.raises(openai.BadRequestError, match="unknown task 'nope'"):
        client.embeddings.create(model="m", input="x", extra_body={"task": "nope"})
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        bad.embeddings.create(model="m", input="x")
    models = client.models.list()
    assert [m.id for m in models.data] == ["gembed-test"]


def test_tei_client_on_embed(gembed, model, server):
    """What TEI clients send (huggingface_hub's InferenceClient.feature_extraction
    posts these fields to the endpoint URL)."""
    want = cli_vectors(gembed, model, TEXTS, "--task", "document")
    status, _, body = server.post("/embed", {"inputs": TEXTS, "normalize": True, "truncate": True,
                                             "truncation_direction": "right", "prompt_name": "document"})
    assert status == 200, body
    assert_same_vectors(body, want)
    status, _, body = server.post("/embed", {"inputs": "zebra crossing", "dimensions": 128})
    assert status == 200 and len(body) == 1 and len(body[0]) == 128
    assert_same_vectors(body, cli_vectors(gembed, model, ["zebra crossing"], "--dim", "128"))
    status, _, body = server.post("/embed", {"inputs": "x", "normalize": False})
    assert status == 400 and "normalize" in body["error"]["message"]

    hub = pytest.importorskip("huggingface_hub")
    client = hub.InferenceClient(model=server.url + "/embed", token=API_KEY, timeout=60)
    try:
        got = client.feature_extraction(TEXTS[0], prompt_name="document", truncate=True, normalize=True)
    except Exception as e:  # pragma: no cover - a client version that does not post to a plain URL
        pytest.skip(f"huggingface_hub {hub.__version__} InferenceClient cannot reach a plain URL here: {e}")
    assert_same_vectors(np.asarray(got).reshape(1, -1), want[:1])


def test_tokenize_info_models_metrics(gembed, model, server):
    status, _, body = server.post("/tokenize", {"inputs": ["Hello world"], "add_special_tokens": True})
    assert status == 200
    ids = json.loads(run([gembed, "tokenize", "--model", model, "--add-special"], b"Hello world\n").decode())
    assert [t["id"] for t in body[0]] == ids and body[0][0]["text"] == "<bos>"
    status, _, body = server.post("/tokenize", {"content": "Hello world"})
    assert status == 200 and body["tokens"] == ids[1:-1]
    status, _, info = server.request("GET", "/info", headers=AUTH)
    assert status == 200 and info["dims"] == 256 and info["supported_dims"] == [256, 128]
    assert info["model_dtype"] == "Q8_0" and info["model_id"] == "gembed-test" and info["threads"] == 2
    assert info["kernels"].startswith("gemm_q8 "), info["kernels"]
    assert "query" in info["tasks"] and info["max_client_batch_size"] == 2048
    assert info["max_batch_tokens"] == 4096
    m = server.metrics()
    assert m["gembed_forward_passes_total"] >= 1
    assert m['gembed_requests_total{endpoint="/tokenize",status="200"}'] >= 2
    assert 'gembed_request_duration_seconds_bucket{endpoint="/tokenize",le="+Inf"}' in m
    for name in ("gembed_queue_sequences", "gembed_queue_tokens", "gembed_tokens_per_second",
                 "gembed_forward_batch_texts_mean", "gembed_forward_tokens_total", "gembed_requests_in_flight"):
        assert name in m, name


def test_a_pass_budget_below_the_context_is_raised_and_said(gembed, model):
    """--max-batch-tokens below the context length cannot hold one long text: the engine raises it to the
    context, says so on stderr, and /info shows the budget in effect."""
    s = Server(gembed, model, "--max-batch-tokens", "100")
    try:
        status, _, info = s.request("GET", "/info")
        assert status == 200 and info["max_batch_tokens"] == info["max_input_length"] == 2048, info
        status, _, body = s.post("/v1/embeddings", {"input": ["a short one", " ".join(["word"] * 1500)]})
        assert status == 200 and len(body["data"]) == 2, body
    finally:
        assert s.stop() == 0
    err = s.proc.stderr.read().decode()
    assert "a forward pass of 100 tokens cannot hold one text of the context length; using 2048" in err, err


# ---- cross-client batching ------------------------------------------------------------


def test_64_concurrent_clients_share_forward_passes(gembed, model, server):
    texts = [f"client {i} asks about topic {i * 7 % 13}" for i in range(64)]
    want = cli_vectors(gembed, model, texts)
    # A long request first keeps the engine busy, so the 64 one-text requests
    # arrive while a pass runs and are packed together into the next ones.
    blocker_texts = [" ".join(["the"] * 1000)] * 8  # 2 passes of 4 texts
    conns = [server.conn() for _ in range(64)]
    for c in conns:
        c.connect()
    before = server.metrics()
    results: list = [None] * 64
    barrier = threading.Barrier(65)

    def client(i):
        barrier.wait(timeout=60)
        conns[i].request("POST", "/v1/embeddings", body=json.dumps({"input": texts[i]}), headers={**JSON, **AUTH})
        r = conns[i].getresponse()
        results[i] = (r.status, json.loads(r.read()))
        conns[i].close()

    blocker_result = {}

    def blocker():
        blocker_result["r"] = server.post("/v1/embeddings", {"input": blocker_texts})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    bt = threading.Thread(target=blocker)
    bt.start()
    end = time.monotonic() + 60
    while server.metrics().get("gembed_engine_active_calls", 0) == 0 and time.monotonic() < end:
        time.sleep(0.002)
    barrier.wait(timeout=60)
    for t in threads:
        t.join(120)
    bt.join(120)
    assert blocker_result["r"][0] == 200
    for i, (status, body) in enumerate(results):
        assert status == 200, body
        assert_same_vectors([body["data"][0]["embedding"]], want[i:i + 1])
    after = server.metrics()
    requests = after['gembed_requests_total{endpoint="/v1/embeddings",status="200"}'] - before.get(
        'gembed_requests_total{endpoint="/v1/embeddings",status="200"}', 0)
    passes = after["gembed_forward_passes_total"] - before["gembed_forward_passes_total"]
    texts_run = after["gembed_forward_texts_total"] - before["gembed_forward_texts_total"]
    assert requests == 65 and texts_run == 64 + len(blocker_texts)
    # Without batching: 64 passes for the clients plus 2 for the blocker.
    assert passes <= 32, f"{passes} forward passes for {requests} requests"
    print(f"\n64 one-text clients + a {len(blocker_texts)}-text request: {passes:.0f} forward passes")


# ---- bad requests ----------------------------------------------------------------------


def raw_exchange(server, data: bytes, read_timeout: float = 20) -> bytes:
    """Sends raw bytes, then reads until the server closes (bounded)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout)
    try:
        s.sendall(data)
        out = b""
        end = time.monotonic() + read_timeout
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def response_complete(resp: bytes) -> bool:
    """Whether `resp` holds a whole HTTP response: the head and, when it names one, its Content-Length
    of body (the body may arrive in a later TCP segment than the head)."""
    head, sep, body = resp.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return True


def parse_raw(resp: bytes):
    head, _, body = resp.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


BIG = 50 * 1024 * 1024

BAD_REQUESTS = [
    ("bad JSON", "POST", "/v1/embeddings", b'{"input": "x",', {}, 400, "invalid JSON"),
    ("wrong type of input", "POST", "/v1/embeddings", {"input": 42}, {}, 400, "'input' must be"),
    ("wrong type of dimensions", "POST", "/v1/embeddings", {"input": "x", "dimensions": "128"}, {}, 400,
     "'dimensions' must be an integer"),
    ("not an object", "POST", "/v1/embeddings", [1, 2], {}, 400, "must be a JSON object"),
    ("nested arrays", "POST", "/v1/embeddings", {"input": [[["a"]]]}, {}, 400, "must be an integer token id"),
    ("mixed array", "POST", "/v1/embeddings", {"input": ["a", ["b"]]}, {}, 400, "'input[1]' must be a string"),
    ("token id out of range", "POST", "/v1/embeddings", {"input": [[2, 262144, 1]]}, {}, 400,
     "outside the vocabulary"),
    ("negative token id", "POST", "/v1/embeddings", {"input": [[2, -5, 1]]}, {}, 400, "outside the vocabulary"),
    ("empty list", "POST", "/v1/embeddings", {"input": []}, {}, 400, "empty array"),
    ("missing input", "POST", "/v1/embeddings", {"model": "m"}, {}, 400, "'input' is required"),
    ("10,000 inputs", "POST", "/v1/embeddings", {"input": ["a"] * 10000}, {}, 413, "at most 2048"),
    ("invalid UTF-8 in a JSON string", "POST", "/v1/embeddings", b'{"input": "caf\xe9 \xff"}', {}, 400,
     "invalid JSON"),
    ("deep nesting", "POST", "/v1/embeddings", b'{"input": ' + b"[" * 100000 + b"]" * 100000 + b"}", {}, 400,
     "nested deeper"),
    ("missing Content-Type", "POST", "/v1/embeddings", b'{"input": "x"}', {"Content-Type": None}, 415,
     "missing Content-Type"),
    ("form Content-Type", "POST", "/v1/embeddings", b'{"input": "x"}',
     {"Content-Type": "application/x-www-form-urlencoded"}, 415, "is not JSON"),
    ("wrong key", "POST", "/v1/embeddings", {"input": "x"}, {"Authorization": "Bearer nope"}, 401,
     "invalid API key"),
    ("missing key", "POST", "/v1/embeddings", {"input": "x"}, {"Authorization": None}, 401, "missing API key"),
    ("wrong key on /metrics", "GET", "/metrics", None, {"Authorization": "Bearer nope"}, 401, "invalid API key"),
    ("unknown endpoint", "POST", "/v1/chat/completions", {"input": "x"}, {}, 404, "no such endpoint"),
    ("wrong method", "GET", "/v1/embeddings", None, {}, 405, "takes POST"),
    ("invalid dimensions", "POST", "/v1/embeddings", {"input": "x", "dimensions": 100}, {}, 400,
     "allowed: 256, 128"),
    ("unknown task", "POST", "/embed", {"inputs": "x", "prompt_name": "nope"}, {}, 400, "unknown task 'nope'"),
    ("truncation off, text too long", "POST", "/v1/embeddings",
     {"input": "the " * 2100, "truncate": False}, {}, 400, "truncation is off"),
]


@pytest.mark.parametrize("name,method,path,body,headers,status,needle", BAD_REQUESTS,
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_is_4xx_with_a_message(server, name, method, path, body, headers, status, needle):
    h = {**JSON, **AUTH, **headers}
    h = {k: v for k, v in h.items() if v is not None}
    got, resp_headers, resp = server.request(method, path, body, h)
    assert got == status, resp
    assert needle in resp["error"]["message"], resp
    assert resp["error"]["type"] and "code" in resp["error"]
    if status == 401:
        assert resp_headers.get("WWW-Authenticate") == "Bearer"
    if status == 405:
        assert resp_headers.get("Allow") == "POST"
    good_request_works(server)


def test_50_mb_body_is_413(server):
    body = b'{"input": "' + b"a" * BIG + b'"}'
    got, _, resp = server.request("POST", "/v1/embeddings", body, {**JSON, **AUTH})
    assert got == 413 and "at most 16777216" in resp["error"]["message"], resp
    # The same over the limit without a Content-Length (chunked) is cut off at the limit.
    c = server.conn()
    c.putrequest("POST", "/v1/embeddings")
    for k, v in {**JSON, **AUTH, "Transfer-Encoding": "chunked"}.items():
        c.putheader(k, v)
    c.endheaders()
    chunk = b"a" * (1 << 20)
    try:
        c.send(b'b\r\n{"input": "\r\n')
        for _ in range(20):
            c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        c.send(b'2\r\n"}\r\n0\r\n\r\n')
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may stop reading once it has answered
    r = c.getresponse()
    assert r.status == 413 and b"--max-body-bytes" in r.read()
    c.close()
    good_request_works(server)


def test_chunked_and_keep_alive_work(server):
    c = server.conn()
    for i in range(3):  # three requests on one connection
        c.request("POST", "/v1/embeddings", body=iter([b'{"input": ', json.dumps(f"text {i}").encode(), b"}"]),
                  headers={**JSON, **AUTH}, encode_chunked=True)
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Connection") != "close"
        assert len(json.loads(r.read())["data"]) == 1
    c.close()


def test_slow_loris_gets_408_and_others_are_served(server):
    """A client that sends its head a byte at a time is cut off after
    --request-timeout (2 s here) with a 408; meanwhile others are served."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    try:
        s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        got = b""
        for i in range(200):  # one header byte every 50 ms: never silent, never finished
            if i == 10:
                good_request_works(server)  # the slow client holds one worker, not the server
            try:
                s.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([s], [], [], 0.05)[0]:
                break
        end = time.monotonic() + 10
        while not response_complete(got) and time.monotonic() < end:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        waited = time.monotonic() - t0
    finally:
        s.close()
    status, body = parse_raw(got)
    assert status == 408 and "not received in time" in body["error"]["message"], got
    assert waited < 10
    good_request_works(server)


def test_slow_loris_on_the_request_line_and_body(server):
    # Stops in the middle of the request line: 408 too (the library alone would close silently).
    s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    try:
        s.sendall(b"POST /v1/embe")
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    assert parse_raw(got)[0] == 408
    # A body that never arrives in full.
    got = raw_exchange(server, b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Authorization: Bearer " + API_KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"in")
    assert parse_raw(got)[0] == 408
    # Garbage instead of HTTP.
    got = raw_exchange(server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")
    assert got == b"" or 400 <= parse_raw(got)[0] < 500
    good_request_works(server)


@pytest.fixture(scope="module")
def tight_server(gembed, model):
    """A server with small limits: 2,000 queued tokens, 8 MiB bodies (64 MiB held at once)."""
    s = Server(gembed, model, "--max-queued-tokens", "2000", "--max-body-bytes", str(8 << 20))
    yield s
    assert s.stop() == 0


def test_full_queue_is_429_with_retry_after(tight_server):
    """A request that would take the engine's queue past --max-queued-tokens is
    refused at once (429, Retry-After) while a 12,000-token request waits."""
    s = tight_server
    big = {"input": [" ".join(["the"] * 998)] * 12}  # 3 passes of 4 texts
    result = {}
    t = threading.Thread(target=lambda: result.update(r=s.request("POST", "/v1/embeddings", big, JSON,
                                                                  timeout=300)))
    t.start()
    refused = None
    end = time.monotonic() + 120
    while t.is_alive() and time.monotonic() < end:
        if s.metrics()["gembed_queue_tokens"] > 1900:
            status, headers, body = s.request("POST", "/v1/embeddings", {"input": " ".join(["word"] * 98)}, JSON)
            if status == 429:
                refused = (headers, body)
                break
        time.sleep(0.005)
    t.join(300)
    assert result["r"][0] == 200 and len(result["r"][2]["data"]) == 12
    assert refused is not None, "no 429 while the queue was full"
    headers, body = refused
    assert headers.get("Retry-After") == "1" and "queue is full" in body["error"]["message"], body
    status, _, _ = s.request("POST", "/v1/embeddings", {"input": " ".join(["word"] * 98)}, JSON)
    assert status == 200  # an idle queue takes it again


def test_bodies_held_at_once_are_bounded(tight_server):
    """Chunked bodies reserve --max-body-bytes each while they arrive; past 8 x
    that at once, further bodies get 429 instead of memory."""
    s = tight_server
    stalled = []
    try:
        head = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"inp\r\n")
        def stall():
            c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
            c.sendall(head)
            return c

        stalled.extend(stall() for _ in range(8))  # 8 x 8 MiB reserved, bodies still arriving
        end = time.monotonic() + 30
        status, body = 0, {}
        while time.monotonic() < end:  # until all 8 are being read
            # A probe can reach the server before the last stalled body does and take its place: that
            # stalled connection is then answered (429) and closed; open another in its stead.
            answered, _, _ = select.select(stalled, [], [], 0)
            for c in answered:
                stalled.remove(c)
                c.close()
                stalled.append(stall())
            status, _, body = s.request("POST", "/v1/embeddings", iter([b'{"input": "x"}']), JSON)  # chunked
            if status == 429:
                break
            time.sleep(0.05)
        assert status == 429 and "request bodies at once" in body["error"]["message"], body
        for c in stalled:
            c.close()
        stalled.clear()
        end = time.monotonic() + 30
        while s.request("POST", "/v1/embeddings", iter([b'{"input": "x"}']), JSON)[0] != 200:
            assert time.monotonic() < end
            time.sleep(0.05)
    finally:
        for c in stalled:
            c.close()


# ---- disconnects and drain --------------------------------------------------------------


def test_disconnected_client_has_its_queued_work_dropped(server):
    before = server.metrics()
    long_text = " ".join(["the"] * 1900)
    n = 40  # 20 passes of 2 texts: far more than run in the moments before the close is noticed
    body = json.dumps({"input": [long_text] * n}).encode()
    s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + API_KEY.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    end = time.monotonic() + 60
    while server.metrics().get("gembed_queue_sequences", 0) == 0 and time.monotonic() < end:
        time.sleep(0.005)
    s.close()
    key = 'gembed_requests_total{endpoint="/v1/embeddings",status="499"}'
    end = time.monotonic() + 60
    while server.metrics().get(key, 0) == before.get(key, 0) and time.monotonic() < end:
        time.sleep(0.02)
    after = server.metrics()
    assert after.get(key, 0) == before.get(key, 0) + 1
    assert after["gembed_queue_sequences"] == 0
    texts_run = after["gembed_forward_texts_total"] - before["gembed_forward_texts_total"]
    assert texts_run < n, f"{texts_run} of {n} texts ran after the client left"
    good_request_works(server)


def test_sigterm_drains_32_in_flight_requests(gembed, model):
    s = Server(gembed, model, "--max-queued-tokens", "0")
    try:
        texts = [f"drain {i} " + " ".join(["word"] * 300) for i in range(2)]
        results: list = [None] * 32

        def client(i):
            results[i] = s.request("POST", "/v1/embeddings", {"input": texts, "dimensions": 128}, JSON,
                                   timeout=120)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        end = time.monotonic() + 60
        in_flight = 0
        while time.monotonic() < end:
            in_flight = s.metrics()["gembed_requests_in_flight"]
            if in_flight >= 32:
                break
            time.sleep(0.005)
        s.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(120)
        for status, _, body in results:
            assert status == 200, body
            assert len(body["data"]) == 2 and len(body["data"][0]["embedding"]) == 128
        assert s.proc.wait(60) == 0
        err = s.proc.stderr.read().decode()
        assert "draining" in err and "stopped" in err, err
        print(f"\nSIGTERM with {in_flight:.0f} requests in flight: all 32 answered 200, exit 0")
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", s.port), timeout=5).close()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def test_bad_flags_exit_with_a_message(gembed, model):
    r = subprocess.run([str(gembed), "serve", "--model", str(model), "--port", "0", "--default-task", "nope"],
                       capture_output=True, timeout=60)
    assert r.returncode == 2 and b"unknown task 'nope'" in r.stderr
    r = subprocess.run([str(gembed), "serve", "--model", "/no/such/model.gguf"], capture_output=True, timeout=60)
    assert r.returncode == 1 and b"/no/such/model.gguf" in r.stderr
    # A port in use is an error, not a second server sharing it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run([str(gembed), "serve", "--model", str(model), "--port", str(port)], capture_output=True,
                           timeout=60)
        assert r.returncode == 1 and b"cannot listen" in r.stderr
