"""The prediction server with dynamic batching against the one-request-at-a-time server:
requests/s and p50/p99 latency at 1, 8 and 32 concurrent clients, as ratios from one run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serving.py [--requests 200] [--clients 1,8,32]
        [--model DIR] [--max-new-tokens 16] [--bad-every 10] [--json results.json]

Both sides are `python -m serving` processes on loopback serving the same model, up at the
same time: the baseline with LIFTOFF_SERVE_MAX_BATCH_SIZE=1 (every request its own generate
call, one at a time: the server as it was before batching) and the batched server with its
defaults (up to 32 instances per generate call, a 5 ms window); each client count runs on the
baseline and then at once on the batched server. Each client is a thread with its own keep-alive
connection sending one-instance requests back to back, `--requests` each; every
`--bad-every`-th request is a bad one (malformed JSON, out-of-range parameters, an oversized
prompt, too many instances, a wrong type, ...), which must get its own 4xx JSON error.

Checked on every request: a good one gets 200 and exactly the answer the baseline gives that
prompt alone (greedy decoding); a bad one its expected status. Anything else (another status,
another answer, a dropped connection) is a failure; the run exits 1 if there is one.

The model is the debug preset's Llama (4 layers, the demo's size) built from its config with
seeded, untrained weights (so it never stops early: every answer is `--max-new-tokens` long),
or `--model DIR`, e.g. a registered model under .liftoff/registry/.

One torch thread per server by default: on a small shared machine, two OpenMP threads stall at
every barrier whenever another process takes a core, and both sides would measure the
neighbours (`--threads N` on a machine of one's own).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Run as a file, the repository root is not on sys.path; serving and tests live there.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from serving.local import LocalServer  # noqa: E402

NUM_PROMPTS = 64
BASELINE = {"LIFTOFF_SERVE_MAX_BATCH_SIZE": "1"}
# Each bad request and the status it must get.
BAD = [
    (b'{"instances": [', 400),
    (b'{"instances": ["hi"], "parameters": {"temperature": 1e-300}}', 400),
    (b'{"instances": ["hi"], "parameters": {"max_new_tokens": 0}}', 400),
    (json.dumps({"instances": ["hi"] * 65}).encode(), 413),
    (json.dumps({"instances": ["x" * 100_000]}).encode(), 422),
    (b'{"instances": ["hi"], "parameter": {}}', 400),
    (b'{"instances": [7]}', 400),
    (b'{"instances": [{"messages": [{"role": "bot", "content": "x"}]}]}', 400),
    (b'{"instances": ["hi"], "parameters": {"top_p": 2}}', 400),
    (b"[]", 400),
]


@dataclass
class Load:
    """What one load (one server, N clients) measured."""

    server: str
    clients: int
    requests: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # good requests only

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


def prompts() -> list[str]:
    rng = random.Random(0)
    return [f"What is {rng.randint(1, 99)} + {rng.randint(1, 99)}?" for _ in range(NUM_PROMPTS)]


def ask(conn, body: bytes) -> tuple[int, dict]:
    conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def client(port: int, index: int, load: Load, plan: dict, lock: threading.Lock) -> None:
    """`plan["requests"]` requests in a row; checks and times each into `load`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    questions, truth, bad_every = plan["prompts"], plan["truth"], plan["bad_every"]
    for k in range(plan["requests"]):
        bad = bad_every and k % bad_every == bad_every - 1
        i = (index * 7 + k) % len(questions)
        body, expected = BAD[k % len(BAD)] if bad else (plan["bodies"][i], 200)
        start = time.perf_counter()
        try:
            status, answer = ask(conn, body)
        except (OSError, http.client.HTTPException, ValueError) as err:
            status, answer = None, {"error": f"{type(err).__name__}: {err}"}
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        took = (time.perf_counter() - start) * 1000
        problem = _problem(status, answer, expected, None if bad else truth.get(questions[i]))
        with lock:
            load.requests += 1
            if problem:
                load.failures.append(problem)
            elif not bad:
                load.latencies_ms.append(took)
    conn.close()


def _problem(status, answer: dict, expected: int, truth: str | None) -> str:
    if status != expected:
        return f"status {status} (expected {expected}): {str(answer)[:200]}"
    if expected != 200:
        return "" if isinstance(answer.get("error"), dict) else f"not a JSON error: {answer}"
    if truth is not None and answer["predictions"] != [truth]:
        return f"answer {answer['predictions']} != alone {truth!r}"
    return ""


def run_load(port: int, name: str, clients: int, plan: dict) -> Load:
    load, lock = Load(server=name, clients=clients), threading.Lock()
    threads = [
        threading.Thread(target=client, args=(port, i, load, plan, lock)) for i in range(clients)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - start
    return load


def answers_alone(port: int, plan: dict) -> dict[str, str]:
    """Each prompt asked alone: the answers every load must reproduce."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    truth = {}
    for question, body in zip(plan["prompts"], plan["bodies"], strict=True):
        status, answer = ask(conn, body)
        assert status == 200, answer
        truth[question] = answer["predictions"][0]
    conn.close()
    return truth


def measure(model_dir: str, plan: dict, levels: list[int]) -> tuple[list[Load], list[Load]]:
    """Both servers up at once, each level run on one right after the other: the machine's
    other load changes by the minute, and the two sides should see the same."""
    env = plan["threads"]
    baseline, batched = [], []
    with (
        LocalServer(model_dir, env={**env, **BASELINE}, args=["--no-access-log"]) as old,
        LocalServer(model_dir, env=env, args=["--no-access-log"]) as new,
    ):
        old.wait_healthy(timeout_s=600)
        new.wait_healthy(timeout_s=600)
        plan["truth"] = answers_alone(old.port, plan)
        answers_alone(new.port, plan)  # the same warm-up for both sides
        for clients in levels:
            baseline.append(run_load(old.port, "baseline", clients, plan))
            batched.append(run_load(new.port, "batched", clients, plan))
            print(_row(baseline[-1]), _row(batched[-1]), sep="\n", flush=True)
    return baseline, batched


def _row(load: Load) -> str:
    return (
        f"{load.server:<9} {load.clients:>7} {load.requests:>8} {load.per_s:>10.1f} "
        f"{load.percentile(50):>8.1f} {load.percentile(99):>8.1f} {len(load.failures):>8}"
    )


def report(baseline: list[Load], batched: list[Load]) -> None:
    print("\nbatched / baseline, same run:")
    print(f"{'clients':>7} {'requests/s':>11} {'p50':>8} {'p99':>8}")
    for old, new in zip(baseline, batched, strict=True):
        print(
            f"{new.clients:>7} {new.per_s / old.per_s:>10.2f}x"
            f" {new.percentile(50) / old.percentile(50):>7.2f}x"
            f" {new.percentile(99) / old.percentile(99):>7.2f}x"
        )
    for load in baseline + batched:
        for failure in load.failures[:5]:
            print(f"FAILURE {load.server} {load.clients} clients: {failure}")


def model_for(args) -> str:
    if args.model:
        return args.model
    from tests.support.tiny_model import make_tiny_model_dir

    return make_tiny_model_dir(tempfile.mkdtemp(prefix="liftoff-bench-"), num_layers=4)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=200, help="per client (default 200)")
    p.add_argument("--clients", default="1,8,32", help="client counts (default 1,8,32)")
    p.add_argument("--model", help="model directory (default: the debug Llama, untrained)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="per answer (default 16)")
    p.add_argument("--bad-every", type=int, default=10, help="every Nth request is bad (0: none)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per server (default 1)")
    p.add_argument("--json", help="write the measurements here")
    args = p.parse_args(argv)
    levels = [int(c) for c in args.clients.split(",")]
    questions = prompts()
    params = {"max_new_tokens": args.max_new_tokens}
    plan = {
        "prompts": questions,
        "bodies": [
            json.dumps({"instances": [q], "parameters": params}).encode() for q in questions
        ],
        "truth": {},
        "requests": args.requests,
        "bad_every": args.bad_every,
        "threads": {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)},
    }
    model_dir = model_for(args)
    print(
        f"model {model_dir}; {args.requests} requests per client, 1 in {args.bad_every} bad; "
        f"{args.threads} torch thread(s) per server"
    )
    print(f"{'server':<9} {'clients':>7} {'requests':>8} {'requests/s':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'failures':>8}")  # fmt: skip
    baseline, batched = measure(model_dir, plan, levels)
    report(baseline, batched)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(load) for load in baseline + batched], f)
    return 1 if any(load.failures for load in baseline + batched) else 0


if __name__ == "__main__":
    sys.exit(main())
