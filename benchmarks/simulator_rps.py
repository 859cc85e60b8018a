"""Requests/s of the simulator's status endpoint on one core, measured from another core."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench.simulator.process import SimulatorProcess

API_KEY = "bench-rps-key"


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of `pid` (affinity is per thread on Linux) to one CPU.

    Pinning is what makes the figure "per core": the server gets exactly one CPU,
    libuv's idle worker threads included.
    """
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def create_sessions(url: str, count: int) -> list[str]:
    headers = {"anchor-api-key": API_KEY}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        ids = []
        for _ in range(count):
            response = client.post("/v1/sessions/async", json={"session": {"tags": ["rps"]}})
            response.raise_for_status()
            ids.append(response.json()["data"]["request_id"])
        # One poll each, so the status bodies are the steady-state ones.
        for request_id in ids:
            client.get(f"/v1/sessions/async/{request_id}/status").raise_for_status()
    return ids


# ---------------------------------------------------------------------- wrk

_WRK_SCRIPT = """
local ids = {%(ids)s}
local n = 0
wrk.headers["anchor-api-key"] = "%(key)s"
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/sessions/async/" .. ids[(n %% #ids) + 1] .. "/status")
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"connect\\": %%d, \\"read\\": %%d, "
    .. "\\"write\\": %%d, \\"status\\": %%d, \\"timeout\\": %%d, \\"p50\\": %%d, \\"p90\\": %%d, "
    .. "\\"p99\\": %%d, \\"max\\": %%d}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def run_wrk(url: str, ids: list[str], seconds: float, connections: int) -> dict[str, float]:
    script = _WRK_SCRIPT % {"ids": ", ".join(f'"{i}"' for i in ids), "key": API_KEY}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "status.lua"
        path.write_text(script)
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(path), url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = orjson.loads(line.removeprefix("RESULT "))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {
        "requests": r["requests"],
        "seconds": r["duration_us"] / 1e6,
        "errors": errors,
        "p50_ms": r["p50"] / 1000,
        "p90_ms": r["p90"] / 1000,
        "p99_ms": r["p99"] / 1000,
        "max_ms": r["max"] / 1000,
    }


# ---------------------------------------------------------------------- python fallback


async def _connection(
    host: str, port: int, ids: list[str], until: float, latencies: list[int], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    requests = [
        (f"GET /v1/sessions/async/{i}/status HTTP/1.1\r\nHost: {host}\r\n"
         f"anchor-api-key: {API_KEY}\r\n\r\n").encode()
        for i in ids
    ]
    n = 0
    while time.monotonic() < until:
        start = time.perf_counter_ns()
        writer.write(requests[n % len(requests)])
        n += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        latencies.append(time.perf_counter_ns() - start)
        if not head.startswith(b"HTTP/1.1 200"):
            errors.append(1)
    writer.close()


async def _python_load(
    url: str, ids: list[str], seconds: float, connections: int
) -> dict[str, float]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    latencies: list[int] = []
    errors: list[int] = []
    start = time.monotonic()
    until = start + seconds
    await asyncio.gather(
        *(_connection(host, int(port), ids, until, latencies, errors) for _ in range(connections))
    )
    elapsed = time.monotonic() - start
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1e6

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "errors": len(errors),
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "max_ms": latencies[-1] / 1e6,
    }


def run_python(url: str, ids: list[str], seconds: float, connections: int) -> dict[str, float]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_python_load(url, ids, seconds, connections))
    return uvloop.run(_python_load(url, ids, seconds, connections))


# ---------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()

    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    with SimulatorProcess("default", seed=1, api_key=API_KEY, truth=False) as sim:
        pin(sim.pid, args.server_cpu)
        pin(os.getpid(), args.client_cpu)  # and wrk, which inherits the affinity
        ids = create_sessions(sim.url, args.sessions)
        run = run_wrk if generator == "wrk" else run_python
        result = run(sim.url, ids, args.seconds, args.connections)
        alive = sim.alive()
    rps = result["requests"] / result["seconds"]
    print(
        f"generator={generator} server_cpu={args.server_cpu} client_cpu={args.client_cpu} "
        f"connections={args.connections} seconds={result['seconds']:.1f}"
    )
    print(f"status requests/s: {rps:,.0f}  (requests {result['requests']:,}, "
          f"errors {result['errors']})")
    print(f"latency ms: p50 {result['p50_ms']:.2f}  p90 {result['p90_ms']:.2f}  "
          f"p99 {result['p99_ms']:.2f}  max {result['max_ms']:.2f}")
    if not alive:
        print("the simulator died during the run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
