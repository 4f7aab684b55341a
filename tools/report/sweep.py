"""Reads the sweep's JSON lines (docs/sweep_format.md) into lists per kind, checking each line.

A line that is not a JSON object, has no known "kind", or lacks a field the report needs stops
the run with the file name and line number. Lines of a kind this reader does not know are
counted and reported, not fatal: a newer sweep may add kinds.
"""

import json
import math
from dataclasses import dataclass, field

# The fields each kind must carry for the tables and plots; the rest are optional. A sweep on
# the CPU has no MFU (no peak in the catalog) and no measured memory, so those are optional in
# measured lines; the report shows "—" and plots the memory estimate instead.
IDENTITY = ("key", "gpu", "gpus", "preset", "attention", "parallel", "micro_batch", "seq")
REQUIRED = {
    "measured": IDENTITY + ("tokens_per_s",),
    "skipped": IDENTITY + ("reason", "estimate_gib", "memory_limit_gib"),
    "predicted": IDENTITY + ("tokens_per_s", "mfu_pct", "memory_gib", "fits"),
    "loss_curve": ("preset", "global_batch", "points"),
    "loss_per_dollar": ("key", "source", "gpu", "gpus", "preset", "attention", "parallel",
                        "micro_batch", "budget_dollars", "loss_at_budget"),
    "law_cost": ("key", "source", "gpu", "gpus", "preset", "attention", "parallel",
                 "micro_batch", "tokens_per_s", "law", "dollars_to_target", "hours_to_target",
                 "loss_at_target"),
    "best": ("by", "source", "preset", "gpu", "gpus", "key", "value"),
}
NUMBERS = ("gpus", "micro_batch", "seq", "tokens_per_s", "mfu_pct", "memory_gib", "estimate_gib",
           "memory_limit_gib", "global_batch", "budget_dollars", "loss_at_budget", "value",
           "dollars_to_target", "hours_to_target", "loss_at_target", "dollars_per_hour",
           "dollars_per_gpu_hour", "tokens_per_s_spread")


class SweepError(Exception):
    """A malformed line; the message starts with FILE:LINE."""


@dataclass
class Sweep:
    path: str
    measured: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    predicted: list = field(default_factory=list)
    loss_curve: list = field(default_factory=list)
    loss_per_dollar: list = field(default_factory=list)
    law_cost: list = field(default_factory=list)
    best: list = field(default_factory=list)
    unknown_kinds: dict = field(default_factory=dict)  # kind -> line count
    duplicates: list = field(default_factory=list)     # (kind, key) seen twice; the last kept
    torn_last_line: int = 0                             # number of a dropped torn last line

    def measured_by_key(self):
        return {m["key"]: m for m in self.measured}

    def predicted_by_key(self):
        return {p["key"]: p for p in self.predicted}


def _check(record, kind, where):
    missing = [f for f in REQUIRED[kind] if f not in record]
    if missing:
        raise SweepError(f"{where}: a '{kind}' line lacks {', '.join(repr(m) for m in missing)}")
    for name in NUMBERS:
        if name not in record or (record[name] is None and name not in REQUIRED[kind]):
            continue  # optional and absent or null
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SweepError(f"{where}: '{name}' is {json.dumps(value)}, not a finite number")
    if kind in ("measured", "predicted", "law_cost") and record["tokens_per_s"] <= 0:
        raise SweepError(f"{where}: 'tokens_per_s' is {record['tokens_per_s']}, must be > 0")
    if kind in ("measured", "skipped", "predicted", "loss_per_dollar", "law_cost", "best") \
            and record["gpus"] < 1:
        raise SweepError(f"{where}: 'gpus' is {record['gpus']}, must be >= 1")
    if kind == "loss_curve":
        points = record["points"]
        if not isinstance(points, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p)
                for p in points):
            raise SweepError(f"{where}: 'points' must be a list of [tokens, loss] pairs")
    if kind in ("loss_per_dollar", "law_cost", "best") and record["source"] not in ("measured", "predicted"):
        raise SweepError(f"{where}: 'source' is {record['source']!r}, "
                         "must be 'measured' or 'predicted'")


def load(path):
    """The sweep at `path`; raises SweepError on the first malformed line."""
    sweep = Sweep(path=path)
    seen = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            where = f"{path}:{number}"
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\n"))
            except json.JSONDecodeError as e:
                # A sweep killed mid-write leaves a torn last line (only the last line can lack
                # its newline); the sweep drops it when it resumes, and so does the report.
                # Anywhere else a bad line is damage.
                if not line.endswith("\n"):
                    sweep.torn_last_line = number
                    break
                raise SweepError(f"{where}: not valid JSON ({e.msg} at column {e.pos + 1})") from None
            if not isinstance(record, dict):
                raise SweepError(f"{where}: a line must be a JSON object, not {type(record).__name__}")
            kind = record.get("kind")
            if not isinstance(kind, str):
                raise SweepError(f"{where}: the line has no \"kind\"")
            if kind not in REQUIRED:
                sweep.unknown_kinds[kind] = sweep.unknown_kinds.get(kind, 0) + 1
                continue
            _check(record, kind, where)
            record["_line"] = number
            bucket = getattr(sweep, kind)
            identity = _identity(kind, record)
            if identity is not None and identity in seen:
                sweep.duplicates.append((kind, identity[1:]))
                bucket.remove(seen[identity])
            if identity is not None:
                seen[identity] = record
            bucket.append(record)
    return sweep


def _identity(kind, record):
    """What makes a line unique within its kind, or None where repeats are expected."""
    if kind in ("measured", "skipped", "predicted"):
        return (kind, record["key"])
    if kind in ("loss_per_dollar", "law_cost"):
        return (kind, record["key"], record["source"])
    if kind == "loss_curve":
        return (kind, record["preset"], record["global_batch"], record.get("seq"))
    return None
