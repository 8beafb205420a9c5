"""The shell commands of a Markdown file's ```bash blocks, as a reader would type them.

    for command in readme_commands(REPO / "README.md"):
        command.text      # one command: continuation lines joined, its trailing comment dropped
        command.line      # where it starts in the file
        command.env       # {"A": "1"} of `A=1 cmd ...`
        command.program   # "cmd" (the last part of its path)
        command.args      # ["cmd", ...]

A block's comment lines and blank lines are not commands; a `#` inside quotes is kept.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^\s*```\s*(\w*)")
SHELLS = ("bash", "sh", "shell", "console")
# A VAR=value word (its value may hold $(...) with spaces), and the run of them a line starts with.
_VALUE = r"(?:\$\([^)]*\)|[^\s$]|\$(?!\())*"
_ASSIGNMENT = re.compile(rf"([A-Za-z_]\w*)=({_VALUE})")
_ASSIGNMENTS = re.compile(rf"(?:[A-Za-z_]\w*={_VALUE}\s*)*")


@dataclass(frozen=True)
class Command:
    text: str
    line: int

    @property
    def env(self) -> dict[str, str]:
        """The VAR=value assignments before the program."""
        return dict(_ASSIGNMENT.findall(self._assignments()))

    @property
    def program(self) -> str:
        """The program run, after any VAR=value assignments (the last path part); "" for a line
        that only sets variables."""
        rest = self.text[len(self._assignments()) :].split()
        return rest[0].rsplit("/", 1)[-1] if rest else ""

    @property
    def args(self) -> list[str]:
        """The words after the assignments: the program and its arguments."""
        return shlex.split(self.text[len(self._assignments()) :])

    def _assignments(self) -> str:
        return _ASSIGNMENTS.match(self.text).group(0)


def readme_commands(path: Path) -> list[Command]:
    commands, block, pending, start = [], None, "", 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = _FENCE.match(line)
        if fence:
            block = None if block is not None else fence.group(1)
            continue
        if block not in SHELLS:
            continue
        if not pending:
            start = number
        pending = f"{pending} {line.strip()}".strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        text, pending = _without_comment(pending), ""
        if text:
            commands.append(Command(text=text, line=start))
    return commands


def _without_comment(text: str) -> str:
    """`text` up to its first `#` that starts a word outside quotes."""
    quote, previous = None, " "
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote and previous != "\\" else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and previous.isspace():
            return text[:index].rstrip()
        previous = char
    return text.rstrip()
