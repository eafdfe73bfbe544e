"""CPU time of processes and their live descendants, read from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of `root` and every live process under it (a server and its workers)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)], cpu[int(entry.name)] = stat
    total = 0.0
    for pid, seconds in cpu.items():
        ancestor: int | None = pid
        while ancestor is not None and ancestor > 1:
            if ancestor == root:
                total += seconds
                break
            ancestor = parents.get(ancestor)
    return total


def server_pids(state_dir: Path) -> dict[str, int]:
    """The pids of the servers `infra/up.sh` started (kafka, postgres, s3), where they run."""
    files = {
        "kafka": state_dir / "kafka" / "kafka.pid",
        "postgres": state_dir / "postgres" / "data" / "postmaster.pid",
        "s3": state_dir / "s3" / "s3.pid",
    }
    pids: dict[str, int] = {}
    for name, file in files.items():
        try:
            pid = int(file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            continue
        if Path(f"/proc/{pid}").exists():
            pids[name] = pid
    return pids
