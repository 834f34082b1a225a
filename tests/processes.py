"""The machine's processes as /proc shows them: the one reader the process tests share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    pgrp: int
    state: str  # "Z": exited, not yet reaped
    name: str


def processes() -> list[Process]:
    """Every process readable now (one that ends while it is read is left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces and parentheses.
        state, ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        found.append(Process(int(entry.name), int(ppid), int(pgrp), state, name))
    return found


def descendants(root: int) -> list[int]:
    """The pids of ``root``'s children, their children, and so on."""
    children: dict[int, list[int]] = {}
    for process in processes():
        children.setdefault(process.ppid, []).append(process.pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
