"""pytest-benchmark results (`--benchmark-json`): benchmarks whose mean time grew by more than a
threshold between two runs become `perf_regression` records."""

from __future__ import annotations

from typing import Any

from mnemo.pipeline.records import InvalidRecord, Record, build, read_json


def threshold_percent(text: str) -> float:
    """`10%`, `10` (percent) or `0.1` (a fraction) → 10.0."""
    raw = text.strip()
    try:
        value = float(raw.removesuffix("%"))
    except ValueError:
        raise InvalidRecord(f"--threshold: not a percentage: {text!r} (e.g. 10%)") from None
    if not raw.endswith("%") and value < 1:
        value *= 100
    if value <= 0:
        raise InvalidRecord(f"--threshold: must be above 0, got {text!r}")
    return value


def load(path: str) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise InvalidRecord(f"{path}: not a pytest-benchmark file (no 'benchmarks' list)")
    return data


def _means(data: dict[str, Any], path: str) -> dict[str, float]:
    means = {}
    for bench in data["benchmarks"]:
        try:
            means[bench.get("fullname") or bench["name"]] = float(bench["stats"]["mean"])
        except (KeyError, TypeError, ValueError):
            raise InvalidRecord(f"{path}: a benchmark has no name or stats.mean") from None
    return means


def regressions(old_path: str, new_path: str, threshold: float) -> list[Record]:
    """One record per benchmark in both files whose mean grew by more than `threshold` %."""
    old, new = load(old_path), load(new_path)
    before, after = _means(old, old_path), _means(new, new_path)
    commit = (new.get("commit_info") or {}).get("id")
    found = []
    for name in sorted(before.keys() & after.keys()):
        if before[name] <= 0:
            continue
        change = (after[name] - before[name]) / before[name] * 100
        if change <= threshold:
            continue
        record = build(
            "perf-regression",
            {
                "metric": f"{name} (mean)",
                "baseline": before[name],
                "current": after[name],
                "change": round(change, 2),
                "unit": "s",
                "commit": commit,
            },
            source="pytest-benchmark",
        )
        record.key = f"perf_regression:{name}:{commit or new_path}"
        found.append(record)
    return found
