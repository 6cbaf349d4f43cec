"""The fuzzing counts of benchmarks/results/fuzz/long.json and the size grid's sizes.json (both written by `make
fuzz`) as the Markdown tables of docs/security.md: `python -m benchmarks.fuzz_table [FILE [SIZES]]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.common import RESULTS


def cell(text: str) -> str:
    """Text in a table cell: pipes escaped."""
    return text.replace("|", "\\|")


SIZES_KIND = "sizes (search, then retrain of its arch.json)"


def table(counts: dict, sizes: dict | None = None) -> str:
    """One row per input kind; ``sizes`` (benchmarks/fuzz_sizes.py's counts) joins as one more, where accepted is
    a combination that exported and retrained."""
    kinds = dict(counts["kinds"])
    if sizes:
        kinds[SIZES_KIND] = {"tried": sizes["tried"], "accepted": sizes["ok"], "refused": sizes["refused"]}
    rows = ["| input kind | tried | accepted | refused (one line, exit 2) |", "| --- | ---: | ---: | ---: |"]
    for kind, c in kinds.items():
        rows.append(f"| {kind} | {c['tried']} | {c['accepted']} | {c['refused']} |")
    t = {key: sum(c[key] for c in kinds.values()) for key in ("tried", "accepted", "refused")}
    rows.append(f"| **all** | **{t['tried']}** | **{t['accepted']}** | **{t['refused']}** |")
    rows.append("")
    rows.append(f"Profile `{counts['profile']}`, {counts['seconds']} s. Failures found and fixed: "
                f"{len(counts['failures_found_and_fixed'])}.")
    if sizes:
        cut = "" if sizes["tried"] == sizes["planned"] else f" (the first {sizes['tried']}: the run was cut short)"
        rows.append(f"Sizes: {sizes['combinations']}{cut}, of the grid's {sizes['grid_size']:,}; "
                    f"{sizes['seconds']} s; failures: {sizes['failure']}.")
    return "\n".join(rows)


def sizes_table(sizes: dict) -> str:
    """The size grid's refusals by kind (numbers left out), then each failing combination."""
    rows = ["| refused because (numbers left out) | combinations |", "| --- | ---: |"]
    rows += [f"| {cell(why)} | {n} |" for why, n in sizes["refusals"].items()]
    if sizes["failures"]:
        rows += ["", "| failing combination | what happened |", "| --- | --- |"]
        rows += [f"| {cell(' '.join(f'{k}={v}' for k, v in f['combination'].items()))} | {cell(f['detail'])} |"
                 for f in sizes["failures"]]
    return "\n".join(rows)


def found_table(counts: dict) -> str:
    """The failures fuzzing found (``FOUND`` in tests/test_fuzz.py, as the counts file carries it), all fixed."""
    rows = ["| input kind | input | was | fixed in |", "| --- | --- | --- | --- |"]
    rows += [f"| {f['kind']} | {cell(f['input'])} | {cell(f['was'])} | {cell(f['fix'])} |"
             for f in counts["failures_found_and_fixed"]]
    return "\n".join(rows)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "fuzz" / "long.json"
    sizes = Path(sys.argv[2]) if len(sys.argv) > 2 else path.with_name("sizes.json")
    print(table(json.loads(path.read_text()), json.loads(sizes.read_text()) if sizes.is_file() else None))
