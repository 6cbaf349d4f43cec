"""The fuzzing counts of benchmarks/results/fuzz/long.json (written by `make fuzz`) as the Markdown table of
docs/security.md: `python benchmarks/fuzz_table.py [FILE]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table(counts: dict) -> str:
    rows = ["| input kind | tried | accepted | refused (one line, exit 2) |", "| --- | ---: | ---: | ---: |"]
    for kind, c in counts["kinds"].items():
        rows.append(f"| {kind} | {c['tried']} | {c['accepted']} | {c['refused']} |")
    t = counts["total"]
    rows.append(f"| **all** | **{t['tried']}** | **{t['accepted']}** | **{t['refused']}** |")
    rows.append("")
    rows.append(f"Profile `{counts['profile']}`, {counts['seconds']} s. Failures found and fixed: "
                f"{len(counts['failures_found_and_fixed'])}.")
    return "\n".join(rows)


def found_table(counts: dict) -> str:
    """The failures fuzzing found (``FOUND`` in tests/test_fuzz.py, as the counts file carries it), all fixed."""
    cell = lambda text: text.replace("|", "\\|")  # a table cell: pipes escaped
    rows = ["| input kind | input | was | fixed in |", "| --- | --- | --- | --- |"]
    rows += [f"| {f['kind']} | {cell(f['input'])} | {cell(f['was'])} | {cell(f['fix'])} |"
             for f in counts["failures_found_and_fixed"]]
    return "\n".join(rows)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / "results" / "fuzz" / "long.json"
    print(table(json.loads(path.read_text())))
