#!/usr/bin/env python3
"""`gembed serve` vs `llama-server --embeddings --pooling mean`, side by side
in one run: the same Q8_0 GGUF, the same texts, the same compute threads, the
same closed-loop load generator.

Load: N clients (N = concurrency), each with one keep-alive HTTP/1.1
connection, send one text per POST /v1/embeddings (OpenAI shape, float
encoding) and send the next as soon as the answer arrives (closed loop).
One thread drives all N connections (non-blocking sockets, epoll), bodies
are encoded before the run and answers are not decoded in the timed loop
(one answer per cell is checked), so the client costs little CPU; it does
share the machine's cores with the server under test (both servers see the
same client), and each cell records the client's CPU time. Texts are distinct: N - 2 common words that are one
token each, checked with `gembed tokenize` (and llama.cpp's llama-tokenize),
so every text has exactly N tokens with <bos>/<eos> and no server can reuse
a cached prompt.

Measured, for each server:
  * texts/s and p50/p99 latency at concurrency 1, 8, 64 (--concurrency) for
    12- and 128-token texts (--tokens), cells interleaved gembed / llama;
  * the overload row: 4x the largest concurrency (--overload-factor) with
    --overload-tokens texts, each cell right after one at the largest
    concurrency (--pairs pairs): texts/s as a share of the peak measured
    next to it (median), and every status (200, 429, other, timeouts);
  * RSS over time at saturation (--rss-duration s at the largest
    concurrency, sampled every --rss-interval s): RSS after the first minute
    (or the first half of a shorter run) vs at the end;
  * gembed serve at concurrency 1 vs `gembed bench --input` on one text of
    the same length, alternated --pairs + 1 times (the cost of HTTP and JSON
    per request).
Servers: gembed serve --threads T; llama-server -t T -tb T -np <max conc>
-c <np x 256> -b 4096 -ub 4096 (one micro-batch of 4,096 tokens, the same
token budget as gembed's forward pass; --llama-batch) --threads-http <overload
conc + 4> --no-webui, flash attention at its default (--llama-args '-fa on'
to pin it). Both answer /health when ready.

Usage (the real run, ~40 min: 12 cells x 2 servers x (3 + 30) s, 2 x 2 overload
pairs, 2 x 10 min of RSS, ~2 min of concurrency 1 vs gembed bench):
  scripts/bench_serve.py --model .cache/bench/embeddinggemma-300m-q8_0.gguf \\
      --duration 30 --rss-duration 600 --json-out bench_serve.json --md-out bench_serve.md
Smoke test (~2 min): --quick.  --no-llama: gembed serve only.
Timings on a shared machine are noisy: the JSON records `uptime` before and after.
"""
from __future__ import annotations

import argparse
import heapq
import json
import pathlib
import random
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_vs_llamacpp as bvl  # noqa: E402  (llama.cpp paths, token counts, gembed bench, uptime)

REPO = bvl.REPO
CANDIDATE_WORDS = ("the of and to in is it that for on with as was at by be this from or an are not but have "
                   "they which one you all were her she there can we his has more time new some what when up "
                   "out about than into only other year people world day water city music house book light "
                   "river small great long little old place work state life part")


# ---------------------------------------------------------------------------
# texts


def one_token_words(g: bvl.Gembed) -> list[str]:
    """Words that are one token both first in a text and after a space."""
    words = CANDIDATE_WORDS.split()
    counts = g.count_tokens([" ".join([w] * 10) for w in words])
    return [w for w, c in zip(words, counts) if c == 12]


def make_texts(words: list[str], n_tokens: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed * 100003 + n_tokens)
    return [" ".join(rng.choice(words) for _ in range(n_tokens - 2)) for _ in range(count)]


# ---------------------------------------------------------------------------
# a minimal keep-alive HTTP/1.1 client (cheap per request, no parsing of answers)


class RawClient:
    def __init__(self, port: int, timeout: float):
        self.port, self.timeout, self.sock, self.buf = port, timeout, None, b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def post(self, path: str, body: bytes) -> tuple[int, dict, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
        while (answer := _parse_answer(self.buf)) is None:
            self._recv()
        status, headers, total = answer
        head_len = self.buf.find(b"\r\n\r\n") + 4
        data, self.buf = self.buf[head_len:total], self.buf[total:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data

    def _recv(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk


def get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------
# servers


class Server:
    def __init__(self, name: str, cmd: list[str], port: int, log_dir: pathlib.Path):
        self.name, self.cmd, self.port = name, [str(c) for c in cmd], port
        self.log = open(log_dir / f"{name}.log", "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if get(self.port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log.name}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def embedding_of(port: int, text: str) -> list[float]:
    c = RawClient(port, 120)
    try:
        status, _, data = c.post("/v1/embeddings", json.dumps({"input": text, "model": "m"}).encode())
    finally:
        c.close()
    if status != 200:
        raise RuntimeError(f"port {port}: {status} {data[:300]!r}")
    return json.loads(data)["data"][0]["embedding"]


# ---------------------------------------------------------------------------
# closed-loop load


class _Client:
    """One closed-loop client of load(): a keep-alive connection and the request in flight on it."""
    __slots__ = ("k", "sock", "out", "buf", "t0", "deadline", "i", "busy")

    def __init__(self, k: int, first: int):
        self.k, self.sock, self.out, self.buf = k, None, b"", b""
        self.t0 = self.deadline = 0.0
        self.i, self.busy = first, False


def _parse_answer(buf: bytes) -> tuple[int, dict, int] | None:
    """(status, headers, bytes the whole answer takes) once `buf` holds a whole answer, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    total = end + 4 + int(headers.get("content-length", "0"))
    return (status, headers, total) if len(buf) >= total else None


def load(port: int, bodies: list[bytes], concurrency: int, warmup: float, duration: float, timeout: float,
         rss_pid: int | None = None, rss_interval: float = 5.0) -> dict:
    """`concurrency` clients in a closed loop for warmup + duration seconds;
    texts/s and latency over the answers that arrive in the timed window
    (timeouts and errors: requests sent in it).

    One thread drives every client's connection with non-blocking sockets
    (selectors: epoll), so the client's own CPU time, taken from the cores the
    server runs on, stays small and does not grow with the number of clients
    the way a thread per client did (context switches, the GIL). It is
    reported as client_cpu_s. After the window no new request starts; the ones
    in flight are answered (or time out) before load() returns, so the next
    cell starts on an idle server."""
    sel = selectors.DefaultSelector()
    t_start = time.monotonic()
    t_measure = t_start + warmup
    t_stop = t_measure + duration
    cpu0 = time.process_time()
    lat, statuses, rss = [], {}, []
    counts = {"timeouts": 0, "errors": 0, "done": 0}
    sleeping: list[tuple[float, int]] = []  # (wake time, client index): 429 back-off and reconnect pauses
    clients = [_Client(k, random.Random(k).randrange(len(bodies))) for k in range(concurrency)]

    def drop(c: _Client):
        if c.sock is not None:
            sel.unregister(c.sock)
            c.sock.close()
        c.sock, c.buf, c.busy = None, b"", False

    def failed(c: _Client, key: str, pause: float):
        if c.t0 >= t_measure:
            counts[key] += 1
        drop(c)
        heapq.heappush(sleeping, (time.monotonic() + pause, c.k))

    def send_next(c: _Client, now: float):
        body = bodies[c.i % len(bodies)]
        c.i += 1
        if c.sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            c.sock = sock
            sel.register(sock, selectors.EVENT_WRITE, c)
        else:
            sel.modify(c.sock, selectors.EVENT_WRITE, c)
        c.out = (b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        c.t0, c.deadline, c.busy = now, now + timeout, True

    now = time.monotonic()
    for c in clients:
        send_next(c, now)
    next_rss = t_start
    next_sweep = t_start + 0.1
    while True:
        now = time.monotonic()
        if rss_pid is not None and next_rss <= now < t_stop:
            rss.append((round(now - t_start, 1), rss_mib(rss_pid)))
            next_rss = now + rss_interval
        while sleeping and sleeping[0][0] <= now:
            _, k = heapq.heappop(sleeping)
            if now < t_stop:
                send_next(clients[k], now)
        if now >= next_sweep:  # requests past their deadline
            next_sweep = now + 0.1
            for c in clients:
                if c.busy and now > c.deadline:
                    failed(c, "timeouts", 0.0)
        busy = any(c.busy for c in clients)
        if now >= t_stop and not busy:
            break
        if not busy and not sleeping:
            break
        wait = 0.1
        if rss_pid is not None and now < t_stop:
            wait = min(wait, max(0.0, next_rss - now))
        if sleeping:
            wait = min(wait, max(0.0, sleeping[0][0] - now))
        for key, events in sel.select(wait):
            c = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    n = c.sock.send(c.out)
                    c.out = c.out[n:]
                    if not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                chunk = c.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                failed(c, "errors", 0.01)
                continue
            if not chunk:  # the server closed the connection
                failed(c, "errors", 0.01)
                continue
            c.buf += chunk
            answer = _parse_answer(c.buf)
            if answer is None:
                continue
            status, headers, total = answer
            t1 = time.monotonic()
            c.buf, c.busy = c.buf[total:], False
            if t_measure <= t1 <= t_stop:  # answers that arrive in the timed window
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    lat.append(t1 - c.t0)
                    counts["done"] += 1
            if headers.get("connection", "").lower() == "close":
                drop(c)
            if t1 >= t_stop:
                continue
            if status == 429:  # back off as told, like the openai SDK does
                heapq.heappush(sleeping, (t1 + min(float(headers.get("retry-after", "1") or 1), 1.0), c.k))
            else:
                send_next(c, t1)
    if rss_pid is not None:
        rss.append((round(time.monotonic() - t_start, 1), rss_mib(rss_pid)))
    for c in clients:
        drop(c)
    sel.close()
    client_cpu = time.process_time() - cpu0
    lat.sort()

    def percentile(p):
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] * 1e3 if lat else None

    done = counts["done"]
    out = {"concurrency": concurrency, "duration_s": duration, "texts_per_s": done / duration,
           "ok": done, "p50_ms": percentile(50), "p99_ms": percentile(99),
           "mean_ms": statistics.fmean(lat) * 1e3 if lat else None,
           "statuses": {str(k): v for k, v in sorted(statuses.items())}, "timeouts": counts["timeouts"],
           "errors": counts["errors"], "client_cpu_s": round(client_cpu, 2),
           "client_cpu_share": round(client_cpu / (time.monotonic() - t_start), 3)}
    if rss:
        out["rss_mib"] = rss
    return out


def fmt(v, spec=".1f"):
    return "n/a" if v is None else f"{v:{spec}}"


def answers(statuses: dict) -> str:
    """{"200": 250, "429": 6} -> "200: 250, 429: 6"."""
    return ", ".join(f"{k}: {v}" for k, v in statuses.items()) or "none"


def pct(share, spec=".0f"):
    """A fraction as a percentage ("n/a" when unknown)."""
    return "n/a" if share is None else f"{100 * share:{spec}}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gembed", default=str(REPO / "build" / "bin" / "gembed"))
    ap.add_argument("--llama-server", default=str(bvl.llama_bin_dir() / "llama-server"))
    ap.add_argument("--model", default=str(REPO / ".cache" / "bench" / "embeddinggemma-300m-q8_0.gguf"),
                    help="Q8_0 GGUF (default: the real model converted by `gembed convert ... --type q8_0`)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", default="12,128", help="text lengths in tokens, <bos>/<eos> included")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before each timed window")
    ap.add_argument("--duration", type=float, default=20.0, help="timed seconds per cell")
    ap.add_argument("--overload-factor", type=int, default=4)
    ap.add_argument("--overload-tokens", type=int, default=12)
    ap.add_argument("--pairs", type=int, default=2,
                    help="overload: (peak, overload) cell pairs per server; concurrency 1 vs gembed bench: "
                         "pairs + 1 alternations")
    ap.add_argument("--rss-duration", type=float, default=600.0, help="seconds at saturation while RSS is sampled")
    ap.add_argument("--rss-interval", type=float, default=5.0)
    ap.add_argument("--rss-gembed-only", action="store_true", help="the RSS-over-time run for gembed serve only")
    ap.add_argument("--rss-tokens", type=int, default=128)
    ap.add_argument("--timeout", type=float, default=120.0, help="client timeout per request (s)")
    ap.add_argument("--texts", type=int, default=2048, help="distinct texts per length")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--llama-batch", type=int, default=4096, help="llama-server -b and -ub (default 4096)")
    bvl.add_llama_args_option(ap, "llama-server")
    ap.add_argument("--no-llama", action="store_true", help="gembed serve only")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 s warm-up, 4 s cells, 8 s RSS runs")
    ap.add_argument("--json-out", default="bench_serve.json")
    ap.add_argument("--md-out", default="bench_serve.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.warmup, args.duration, args.rss_duration, args.rss_interval = 1.0, 4.0, 8.0, 1.0
    lengths = [int(x) for x in args.tokens.split(",")]
    concs = [int(x) for x in args.concurrency.split(",")]
    max_conc = max(concs)
    over_conc = args.overload_factor * max_conc
    T = args.threads

    gembed_bin, model = pathlib.Path(args.gembed), pathlib.Path(args.model)
    for p, what in ((gembed_bin, "build gembed first"), (model, "make it with `gembed convert` (see --help)")):
        if not p.exists():
            sys.exit(f"{p} not found: {what}")
    llama_bin = pathlib.Path(args.llama_server)
    have_llama = not args.no_llama and llama_bin.exists()
    if not args.no_llama and not have_llama:
        print(f"{llama_bin} not found (scripts/build_llama_cpp.sh): gembed serve only", flush=True)

    g = bvl.Gembed(gembed_bin, model)
    ll = bvl.Llama(bvl.llama_bin_dir(), model)
    words = one_token_words(g)
    texts = {n: make_texts(words, n, args.texts, args.seed) for n in sorted(set(lengths + [args.overload_tokens,
                                                                                          args.rss_tokens]))}
    for n, ts in texts.items():
        counts = g.count_tokens(ts)
        if any(c != n for c in counts):
            sys.exit(f"some {n}-token texts have other token counts with this vocabulary")
        if have_llama:
            for t in ts[:2]:
                lc = ll.count_tokens(t)
                if lc is not None and lc != n:
                    sys.exit(f"llama.cpp tokenises a {n}-token text into {lc} tokens")
    bodies = {n: [json.dumps({"input": t, "model": "m", "encoding_format": "float"}).encode() for t in ts]
              for n, ts in texts.items()}

    work = pathlib.Path(tempfile.mkdtemp(prefix="gembed_bench_serve_"))
    res = {"uptime_before": bvl.uptime(), "model": str(model), "threads": T, "tokens": lengths,
           "concurrency": concs, "warmup_s": args.warmup, "duration_s": args.duration, "texts_per_length": args.texts,
           "servers": {}, "cells": []}
    servers: dict[str, Server] = {}
    print(f"model {model}\nlogs in {work}\n{res['uptime_before']}", flush=True)
    try:
        gport = free_port()
        gcmd = [gembed_bin, "serve", "--model", model, "--port", gport, "--threads", T,
                "--max-concurrent-requests", max(256, over_conc)]
        servers["gembed"] = Server("gembed", gcmd, gport, work)
        if have_llama:
            lport = free_port()
            np_slots = max_conc
            lcmd = [llama_bin, "-m", model, "--embeddings", "--pooling", "mean", "-t", T, "-tb", T,
                    "-np", np_slots, "-c", np_slots * 256, "-b", args.llama_batch, "-ub", args.llama_batch,
                    "--host", "127.0.0.1", "--port", lport, "--threads-http", over_conc + 4, "--no-webui",
                    *args.llama_args]
            servers["llama"] = Server("llama", lcmd, lport, work)
        for name, s in servers.items():
            s.wait_ready()
            res["servers"][name] = {"cmd": " ".join(s.cmd), "pid": s.proc.pid}
            print(f"{name} ready on port {s.port}: {' '.join(s.cmd)}", flush=True)

        # The same text gives the same vector on both (same model, same tokens).
        probe = texts[lengths[0]][0]
        vecs = {name: embedding_of(s.port, probe) for name, s in servers.items()}
        if "llama" in vecs:
            a, b = vecs["gembed"], vecs["llama"]
            dot = sum(x * y for x, y in zip(a, b))
            na = sum(x * x for x in a) ** 0.5
            nb = sum(y * y for y in b) ** 0.5
            res["cosine_gembed_vs_llama"] = dot / (na * nb)
            print(f"cosine(gembed, llama-server) on one text: {res['cosine_gembed_vs_llama']:.6f}", flush=True)
        res["dim"] = len(vecs["gembed"])

        # The grid, interleaved server by server.
        for n in lengths:
            for c in concs:
                for name, s in servers.items():
                    r = load(s.port, bodies[n], c, args.warmup, args.duration, args.timeout)
                    r.update({"server": name, "tokens": n})
                    res["cells"].append(r)
                    print(f"{name:7s} {n:4d} tokens  conc {c:3d}: {r['texts_per_s']:8.1f} texts/s  "
                          f"p50 {fmt(r['p50_ms'])} ms  p99 {fmt(r['p99_ms'])} ms  {r['statuses']}"
                          f"{'  timeouts %d' % r['timeouts'] if r['timeouts'] else ''}", flush=True)

        # Overload: 4x the largest concurrency, each overload cell right after a cell at the largest
        # concurrency (the peak) on the same server, --pairs times: the host's speed drifts over a long
        # run, so the share is taken against the peak measured next to it (median over the pairs).
        res["overload"] = []
        for name, s in servers.items():
            pairs = []
            for _ in range(args.pairs):
                peak = load(s.port, bodies[args.overload_tokens], max_conc, args.warmup, args.duration, args.timeout)
                over = load(s.port, bodies[args.overload_tokens], over_conc, args.warmup, args.duration, args.timeout)
                pairs.append({"peak": peak, "overload": over,
                              "share": over["texts_per_s"] / peak["texts_per_s"] if peak["texts_per_s"] else None})
                print(f"{name:7s} {max_conc} clients {peak['texts_per_s']:.1f} texts/s, then {over_conc} clients "
                      f"{over['texts_per_s']:.1f} texts/s ({pct(pairs[-1]['share'])}%) {over['statuses']} "
                      f"timeouts {over['timeouts']} errors {over['errors']}", flush=True)
            shares = [p["share"] for p in pairs if p["share"] is not None]
            statuses: dict = {}
            for p in pairs:
                for k, v in p["overload"]["statuses"].items():
                    statuses[k] = statuses.get(k, 0) + v
            grid_peak = max((x["texts_per_s"] for x in res["cells"]
                             if x["server"] == name and x["tokens"] == args.overload_tokens), default=None)
            r = {"server": name, "tokens": args.overload_tokens, "concurrency": over_conc, "pairs": pairs,
                 "texts_per_s": statistics.median(p["overload"]["texts_per_s"] for p in pairs),
                 "peak_texts_per_s": statistics.median(p["peak"]["texts_per_s"] for p in pairs),
                 "share_of_peak": statistics.median(shares) if shares else None,
                 "grid_peak_texts_per_s": grid_peak, "statuses": statuses,
                 "timeouts": sum(p["overload"]["timeouts"] for p in pairs),
                 "errors": sum(p["overload"]["errors"] for p in pairs)}
            res["overload"].append(r)
            print(f"{name:7s} overload {over_conc} clients x {args.overload_tokens} tokens: median "
                  f"{r['texts_per_s']:.1f} texts/s, {pct(r['share_of_peak'])}% of the peak next to it", flush=True)

        # gembed serve at concurrency 1 vs `gembed bench --input` on the same text, alternated --pairs + 1 times
        # while the servers idle (a bench run long before or after its cell would measure a different host).
        res["http_overhead"] = []
        if 1 in concs:
            for n in lengths:
                f = work / f"one_{n}.txt"
                f.write_text(texts[n][0] + "\n")
                bench_ms, serve_ms = [], []
                for _ in range(args.pairs + 1):
                    rb = subprocess.run([str(gembed_bin), "bench", "--model", str(model), "--input", str(f),
                                         "--threads", str(T), "--repeat", "50", "--json"], capture_output=True,
                                        text=True)
                    if rb.returncode != 0:
                        raise RuntimeError(f"gembed bench failed: {rb.stderr[-2000:]}")
                    bench_ms.append(json.loads(rb.stdout.strip().splitlines()[-1])["p50_ms"])
                    cell = load(servers["gembed"].port, [bodies[n][0]], 1, 1.0, min(args.duration, 10.0),
                                args.timeout)
                    serve_ms.append(cell["p50_ms"])
                b, sv = statistics.median(bench_ms), statistics.median(x for x in serve_ms if x is not None)
                res["http_overhead"].append({"tokens": n, "bench_p50_ms": b, "serve_p50_ms": sv,
                                             "bench_p50_ms_each": bench_ms, "serve_p50_ms_each": serve_ms,
                                             "overhead": sv / b - 1})
                print(f"one {n}-token text: gembed bench p50 {bench_ms} ms, gembed serve c1 p50 "
                      f"{[round(x, 2) for x in serve_ms if x is not None]} ms: {pct(sv / b - 1, '+.1f')}%",
                      flush=True)

        # RSS at saturation over time.
        res["rss"] = []
        for name, s in servers.items():
            if name != "gembed" and args.rss_gembed_only:
                continue
            r = load(s.port, bodies[args.rss_tokens], max_conc, 0.0, args.rss_duration, args.timeout,
                     rss_pid=s.proc.pid, rss_interval=args.rss_interval)
            samples = [(t, m) for t, m in r["rss_mib"] if m is not None]
            t_ref = min(60.0, args.rss_duration / 2)
            ref = next((m for t, m in samples if t >= t_ref), None)
            end = samples[-1][1] if samples else None
            r.update({"server": name, "tokens": args.rss_tokens, "rss_ref_s": t_ref, "rss_ref_mib": ref,
                      "rss_end_mib": end, "rss_change": (end / ref - 1) if ref and end else None})
            res["rss"].append(r)
            print(f"{name:7s} RSS at {t_ref:.0f} s {fmt(ref)} MiB, at {args.rss_duration:.0f} s {fmt(end)} MiB "
                  f"({pct(r['rss_change'], '+.1f')}%), "
                  f"{r['texts_per_s']:.1f} texts/s", flush=True)
    finally:
        for s in servers.values():
            s.stop()

    res["uptime_after"] = bvl.uptime()

    # Markdown.
    md = [f"Model `{model.name}`, {T} threads each; {args.duration:.0f} s per cell after {args.warmup:.0f} s warm-up; "
          f"one text per request.", "",
          "| texts | clients | llama-server texts/s | p50 / p99 ms | gembed serve texts/s | p50 / p99 ms | gembed / llama |",
          "|---|---|---|---|---|---|---|"]
    for n in lengths:
        for c in concs:
            cg = next(x for x in res["cells"] if x["server"] == "gembed" and x["tokens"] == n and x["concurrency"] == c)
            cl = next((x for x in res["cells"] if x["server"] == "llama" and x["tokens"] == n
                       and x["concurrency"] == c), None)
            ratio = cg["texts_per_s"] / cl["texts_per_s"] if cl and cl["texts_per_s"] else None
            md.append(f"| {n} tokens | {c} | {fmt(cl and cl['texts_per_s'])} | "
                      f"{fmt(cl and cl['p50_ms'])} / {fmt(cl and cl['p99_ms'])} | {cg['texts_per_s']:.1f} | "
                      f"{fmt(cg['p50_ms'])} / {fmt(cg['p99_ms'])} | {fmt(ratio, '.2f')}{'x' if ratio else ''} |")
    md += ["", f"| overload: {over_conc} clients x {args.overload_tokens} tokens ({args.pairs} pairs, median) | "
               f"texts/s at {max_conc} clients | at {over_conc} | share | answers | timeouts / errors |",
           "|---|---|---|---|---|---|"]
    for r in res["overload"]:
        md.append(f"| {'gembed serve' if r['server'] == 'gembed' else 'llama-server'} | "
                  f"{r['peak_texts_per_s']:.1f} | {r['texts_per_s']:.1f} | "
                  f"{pct(r['share_of_peak'])}% | {answers(r['statuses'])} | "
                  f"{r['timeouts']} / {r['errors']} |")
    md += ["", f"| RSS at saturation ({max_conc} clients x {args.rss_tokens} tokens) | at {res['rss'][0]['rss_ref_s']:.0f} s | "
               f"at {args.rss_duration:.0f} s | change |", "|---|---|---|---|"]
    for r in res["rss"]:
        md.append(f"| {'gembed serve' if r['server'] == 'gembed' else 'llama-server'} | {fmt(r['rss_ref_mib'], '.0f')} MiB | "
                  f"{fmt(r['rss_end_mib'], '.0f')} MiB | {pct(r['rss_change'], '+.1f')}% |")
    if res["http_overhead"]:
        md += ["", f"| one text, concurrency 1 ({args.pairs + 1} alternations, median) | gembed bench p50 | "
                   "gembed serve p50 | HTTP + JSON |", "|---|---|---|---|"]
        for r in res["http_overhead"]:
            md.append(f"| {r['tokens']} tokens | {r['bench_p50_ms']:.2f} ms | {fmt(r['serve_p50_ms'], '.2f')} ms | "
                      f"{pct(r['overhead'], '+.1f')}% |")
    res["table_markdown"] = "\n".join(md)
    print("\n" + res["table_markdown"])
    print(f"\n{res['uptime_after']}")
    pathlib.Path(args.json_out).write_text(json.dumps(res, indent=1))
    pathlib.Path(args.md_out).write_text(res["table_markdown"] + "\n")
    print(f"wrote {args.json_out} and {args.md_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
