"""A command run on a pseudo-terminal, and what its terminal shows at the end.

    done = run_on_tty([sys.executable, "-m", "pipelines.cli", "run", ...], cwd=REPO, env=env)
    done.returncode, done.raw          # every byte written, escape codes and redraws included
    done.screen                        # the lines left on the terminal, as a user sees them

`screen` replays the output on a minimal terminal: printable text, carriage return, newline,
cursor up (`ESC[nA`), to a column (`ESC[nG`) and erasing a line (`ESC[2K`, `ESC[K`), which
is how rich redraws a live display in place; colours and other escape codes take no room.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from dataclasses import dataclass

_CSI = re.compile(r"\x1b\[([0-9;?]*)([ -/]*[@-~])")


@dataclass
class TtyRun:
    returncode: int
    raw: str

    @property
    def screen(self) -> list[str]:
        return replay(self.raw)


def run_on_tty(
    command: list[str], *, cwd, env: dict, timeout_s: float, columns: int = 120
) -> TtyRun:
    """Run `command` with stdin, stdout and stderr on a new pseudo-terminal of `columns`."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**env, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: the other side closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        else:
            process.kill()
    finally:
        os.close(leader)
    returncode = process.wait(timeout=30)
    return TtyRun(returncode=returncode, raw=b"".join(chunks).decode(errors="replace"))


def replay(text: str) -> list[str]:
    """The lines a terminal shows after `text` (trailing empty lines dropped)."""
    lines, row, col = [""], 0, 0
    position = 0
    for match in _CSI.finditer(text + "\x1b[0m"):
        for char in text[position : match.start()]:
            row, col = _put(lines, row, col, char)
        row, col = _control(lines, row, col, match.group(1), match.group(2))
        position = match.end()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.rstrip() for line in lines]


def _put(lines: list[str], row: int, col: int, char: str) -> tuple[int, int]:
    if char == "\n":
        row += 1
        if row == len(lines):
            lines.append("")
        return row, 0
    if char == "\r":
        return row, 0
    if char < " ":
        return row, col
    line = lines[row].ljust(col)
    lines[row] = line[:col] + char + line[col + 1 :]
    return row, col + 1


def _control(lines: list[str], row: int, col: int, args: str, final: str) -> tuple[int, int]:
    if final == "A":  # cursor up
        return max(0, row - int(args or 1)), col
    if final == "G":  # cursor to a column (1-based)
        return row, int(args or 1) - 1
    if final == "K":  # erase in line: 2 the whole line, else from the cursor on
        lines[row] = "" if args == "2" else lines[row][:col]
    return row, col
