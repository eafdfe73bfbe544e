"""Running wrk and reading what it measured, for bench/api_latency.py."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path


class BenchError(Exception):
    """Something went wrong that makes the measurement invalid."""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests_per_s: float
    """Requests completed per second."""
    p50_ms: float
    """Median latency."""
    p99_ms: float
    """99th percentile latency."""
    requests: int
    """Requests completed."""
    non_2xx: int
    """Responses with a status outside 2xx and 3xx."""
    socket_errors: int
    """Connect, read, write and timeout errors."""
    server_cpu_us: float | None = None
    """CPU time the server process spent per request (user + system), if measured."""


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def duration_ms(text: str) -> float:
    """A wrk duration such as `820.00us`, `9.43ms` or `1.02s`, in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise BenchError(f"unreadable wrk duration {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Requests/s, the 50% and 99% latencies, and the error counts of `wrk --latency` output."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=duration_ms(find(r"^\s+50%\s+(\S+)\s*$").group(1)),
        p99_ms=duration_ms(find(r"^\s+99%\s+(\S+)\s*$").group(1)),
        requests=int(find(r"^\s+(\d+) requests in ").group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_wrk() -> str:
    """The wrk executable, or exit with how to install it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: sudo apt-get install -y wrk")
    return wrk


def wrk_version(wrk: str) -> str:
    """The first line of `wrk -v`, trimmed to the version (wrk prints usage and exits 1)."""
    output = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout
    return output.splitlines()[0].split(" [")[0] if output else "unknown"


async def run_wrk(
    wrk: str,
    url: str,
    *,
    threads: int,
    connections: int,
    seconds: float,
    headers: dict[str, str],
    script: Path | None = None,
    script_args: Sequence[str] = (),
    request_timeout_s: float = 2.0,
    server_pid: int | None = None,
) -> WrkResult:
    """One wrk run; raise on a failed run, a non-2xx response or a socket error.

    With `server_pid`, also measure the server's CPU time per request: unlike requests/s, it
    hardly moves when other processes compete for the cores.
    """
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        f"--timeout={request_timeout_s:g}s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    cpu_before = cpu_seconds(server_pid) if server_pid else None
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    stdout, _ = await process.communicate()
    cpu_after = cpu_seconds(server_pid) if server_pid else None
    output = stdout.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"wrk exited with {process.returncode}:\n{output}")
    result = parse_wrk(output)
    if result.non_2xx or result.socket_errors:
        raise BenchError(
            f"{url}: {result.non_2xx} non-2xx responses and {result.socket_errors} socket errors "
            f"in {result.requests} requests:\n{output}"
        )
    if cpu_before is not None and cpu_after is not None and result.requests:
        result = replace(result, server_cpu_us=(cpu_after - cpu_before) / result.requests * 1e6)
    return result


def median_of(results: list[WrkResult]) -> dict[str, float]:
    """The median requests/s, p50, p99 and (where measured) server CPU per request over rounds."""
    medians = {
        "requests_per_s": statistics.median(r.requests_per_s for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
    }
    cpu = [r.server_cpu_us for r in results if r.server_cpu_us is not None]
    if cpu:
        medians["server_cpu_us"] = statistics.median(cpu)
    return medians


def print_round(label: str, round_no: int, result: WrkResult) -> None:
    """One line per wrk run, as it finishes."""
    print(
        f"round {round_no}  {label:26} {result.requests_per_s:9,.0f} req/s   "
        f"p50 {result.p50_ms:7.2f} ms   p99 {result.p99_ms:7.2f} ms   "
        f"server CPU {result.server_cpu_us or float('nan'):6.0f} us/request   "
        f"({result.requests:,} requests)",
        flush=True,
    )
