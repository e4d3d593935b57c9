"""What every benchmark records about the machine it ran on (shared by the scripts in this folder)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or 'n/a'."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def write_table_report(path: str | Path, title: str, command: str, about: str, fonts: int, header: list[str],
                       rows: list[list[str]]) -> str:
    """A results page: title, the command, what was measured, the machine, one table; written to `path`."""
    lines = [f"# {title}", "", f"`{command}`", "", about, "",
             f"Machine: {cpu_name()}, {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; "
             f"{fonts} fonts.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    text = "\n".join(lines) + "\n"
    Path(path).write_text(text, encoding="utf-8")
    return text
