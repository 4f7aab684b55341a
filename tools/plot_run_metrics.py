"""Reads one run's metrics.jsonl (written by include/slm/train/metrics.hpp) into a Run: its
train, validation and checkpoint points by step, where it was resumed, and its tokens per step.

The line kinds, each a JSON object with an integer "step":
  train        loss, lr, grad_norm, tokens_per_s, elapsed_s, eta_s [, tokens (through the step)]
  validation   val_loss [, eval_s]      (the evaluation before step 1 of a fresh run has no eval_s)
  checkpoint   checkpoint (its file), blocked_s [, due_step]
  checkpoint_deferred, profile           not drawn
A non-finite number is written as null; it is kept as NaN, which matplotlib draws as a gap.

Errors raise MetricsError, whose message starts with FILE or FILE:LINE. A last line without
its newline that is not JSON is a line torn by a kill mid-write: it is left out with a warning.
"""

import json
import math
import os
import statistics
from dataclasses import dataclass, field

TRAIN_FIELDS = ("loss", "lr", "grad_norm", "tokens_per_s")


class MetricsError(Exception):
    """Bad input; the message names the file (and line)."""


@dataclass
class Run:
    label: str                                        # the run directory as given, for the legend
    path: str                                         # the metrics.jsonl read
    train: dict = field(default_factory=dict)         # step -> {field: float} (TRAIN_FIELDS)
    validation: dict = field(default_factory=dict)    # step -> validation loss
    checkpoints: dict = field(default_factory=dict)   # step -> checkpoint file
    resumed_at: list = field(default_factory=list)    # steps the run was (likely) resumed from
    tokens_per_step: float = None                     # from "tokens", else estimated
    tokens_exact: bool = False                        # read from train lines' "tokens"
    warnings: list = field(default_factory=list)
    ignored: int = 0                                  # lines of kinds not drawn

    def has_metrics(self):
        return bool(self.train or self.validation)


def locate(arg):
    """(label, metrics file) for a RUN argument: a run directory or a metrics.jsonl itself."""
    given = arg.rstrip("/") or arg
    if os.path.isdir(given):
        return given, os.path.join(given, "metrics.jsonl")
    if os.path.exists(given):
        parent = os.path.dirname(given)
        label = parent if os.path.basename(given) == "metrics.jsonl" and parent else given
        return label, given
    raise MetricsError(f"{arg}: no such run directory or metrics file")


def read_lines(path):
    """[(line number, record)] of the file's JSON objects; skips a torn last line (warning)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        raise MetricsError(f"{path}: no such file (a run writes it at its first evaluation)")
    except OSError as e:
        raise MetricsError(f"{path}: cannot read: {e.strerror}")
    lines = text.split("\n")
    ends_complete = text.endswith("\n")
    if ends_complete:
        lines.pop()  # the empty piece after the last newline
    records, warnings = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not ends_complete:
                warnings.append(f"{path}:{number}: the last line is torn (the run was stopped "
                                "while writing it); left out")
                continue
            raise MetricsError(f"{path}:{number}: not valid JSON: {line[:80]}")
        if not isinstance(record, dict):
            raise MetricsError(f"{path}:{number}: not a JSON object: {line[:80]}")
        records.append((number, record))
    return records, warnings


def _number(record, key, where):
    """A field as a float; null (non-finite when written) becomes NaN."""
    value = record.get(key)
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricsError(f"{where}: '{key}' is not a number: {value!r}")
    return float(value)


def _step(record, where):
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise MetricsError(f"{where}: no integer 'step' (got {step!r})")
    return step


def _kind(record):
    for key, kind in (("loss", "train"), ("val_loss", "validation"), ("checkpoint", "checkpoint")):
        if key in record:
            return kind
    return None


def _drop_from(run, step):
    """A resumed attempt replaces what the earlier one logged from `step` on."""
    for points in (run.train, run.validation, run.checkpoints):
        for s in [s for s in points if s >= step]:
            del points[s]


def estimate_tokens_per_step(intervals):
    """The tokens one step takes, for logs written before train lines carried "tokens": each
    train line's tokens_per_s is the tokens since the previous train line over the training time
    since it, and that time is the elapsed_s between the two less the evaluations (eval_s) and
    saves (blocked_s) logged between them. intervals: [(steps, tokens_per_s, training seconds)]
    between consecutive train lines of one attempt. The median over them, rounded; None if none."""
    estimates = [tps * seconds / steps for steps, tps, seconds in intervals
                 if steps > 0 and seconds > 0 and math.isfinite(tps * seconds) and tps > 0]
    return float(round(statistics.median(estimates))) if estimates else None


def read_run(arg):
    """The Run of a RUN argument; raises MetricsError."""
    label, path = locate(arg)
    records, warnings = read_lines(path)
    run = Run(label=label, path=path, warnings=warnings)
    intervals = []
    previous = None       # (step, elapsed_s) of the last train line of this attempt
    since_previous = 0.0  # evaluation and save seconds logged since that line
    timed = True          # false when a profile (untimed) ran since that line
    for number, record in records:
        where = f"{path}:{number}"
        kind = _kind(record)
        if kind is None:
            if "profile" in record:
                timed = False
            run.ignored += 1
            continue
        step = _step(record, where)
        if kind == "validation":
            run.validation[step] = _number(record, "val_loss", where)
            since_previous += _number(record, "eval_s", where) if "eval_s" in record else 0.0
            if step == 0 and not run.train:
                previous = (0, 0.0)  # a fresh run: its clock starts after this evaluation
            continue
        if kind == "checkpoint":
            run.checkpoints[step] = record["checkpoint"]
            since_previous += _number(record, "blocked_s", where) if "blocked_s" in record else 0.0
            continue
        values = {key: _number(record, key, where) for key in TRAIN_FIELDS}
        elapsed = _number(record, "elapsed_s", where) if "elapsed_s" in record else math.nan
        # A resumed run appends to the same file: its first train line repeats a step already
        # logged, or its clock (elapsed_s) starts again. Later lines win for the same step: the
        # resumed attempt's lines replace the earlier attempt's from its first logged step on,
        # so an attempt that was cut short leaves no tail past the restart. The resume itself
        # is marked at the newest checkpoint logged before it (what --resume loads, unless that
        # file turned out damaged).
        if previous is not None and (step <= previous[0] or elapsed < previous[1]):
            _drop_from(run, step)
            saved = [s for s in run.checkpoints if s < step]
            run.resumed_at.append(max(saved) if saved else step)
            previous = None
        if previous is not None and timed:
            intervals.append((step - previous[0], values["tokens_per_s"],
                              elapsed - previous[1] - since_previous))
        run.train[step] = values
        if "tokens" in record and step > 0:  # newer logs: every step takes the same tokens
            run.tokens_per_step = _number(record, "tokens", where) / step
            run.tokens_exact = True
        previous, since_previous, timed = (step, elapsed), 0.0, True
    if not run.tokens_exact:
        run.tokens_per_step = estimate_tokens_per_step(intervals)
    return run
