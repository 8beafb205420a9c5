"""The synthetic instruction set of the debug preset: small arithmetic questions.

Every record is unique, so a split by content puts no question in both train and eval, and
held-out exact match measures generalisation rather than recall.
"""

from __future__ import annotations

import random

MAX_OPERAND = 49


def arithmetic_records(num_examples: int, *, seed: int = 0) -> list[dict]:
    """Up to `num_examples` distinct `{"prompt", "response"}` records, in a seeded order."""
    questions = [
        (a, op, b) for a in range(MAX_OPERAND + 1) for b in range(MAX_OPERAND + 1) for op in "+-"
    ]
    random.Random(seed).shuffle(questions)
    return [_record(a, op, b) for a, op, b in questions[:num_examples]]


def _record(a: int, op: str, b: int) -> dict:
    answer = a + b if op == "+" else a - b
    return {"prompt": f"What is {a} {op} {b}?", "response": str(answer)}
