"""Writing a benchmark run down: a JSON file of records, a markdown report and PNG plots."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hushtune.bench.run import BenchResult

GENERALIZATION = "## Generalization: conditions training never sees"
DECISIONS = "## What the user is told"
SETUP = "## Setup"
ACCURACY = "## Accuracy"
FHE_SAMPLE = "## The real thing: a sample in FHE over gRPC"
LATENCY = "## Latency of a private query (FHE over gRPC, loopback)"
OWN_SECTIONS = (GENERALIZATION, DECISIONS, SETUP, ACCURACY, FHE_SAMPLE, LATENCY)
"""The "## " sections ``write_markdown`` writes; it keeps every other one it finds (such as
"## Scale", written by ``hushtune.bench.scale``)."""

SYSTEM_LABELS = {
    "hushtune": "hushtune (private, FHE model in clear mode)",
    "hushtune_hidden": "hushtune with a 256-unit hidden layer the client runs (`hushtune build "
    "--hidden-units 256`; FHE head in clear mode)",
    "mfcc_vote": "starting point: summed MFCC + LR + vote",
    "landmarks": "landmark fingerprinter (not private)",
    "hushtune_landmarks": "issue 14's two stages in the clear (dense + landmark bag shortlist of "
    "10, PIR-fetched 12.8 KB records, offset voting; the SDK's default rule)",
    "hushtune_landmarks_fallback": "hushtune_landmarks with the dense answer as fallback",
    "hushtune_landmarks_strict": "hushtune_landmarks without the dense fallback",
}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _pct(value: Any) -> str:
    return "n/a" if _missing(value) else f"{100 * value:.1f}%"


def _num(value: Any, unit: str = "", scale: float = 1.0, digits: int = 3) -> str:
    if _missing(value):
        return "n/a"
    return f"{value * scale:.{digits}g}{unit}"


def write_json(result: BenchResult, path: Path) -> None:
    """docs/benchmarks.json: one record per (system, mode, songs, condition, length)."""
    path.write_text(json.dumps({"facts": result.facts, "records": result.records,
                                "latency": result.latencies, "roc": result.roc},
                               indent=1, default=float) + "\n")


def read_json(path: Path) -> BenchResult:
    """A run written by ``write_json``, to render its report again."""
    data = json.loads(path.read_text())
    return BenchResult(data["records"], data["facts"], data.get("roc", {}), data["latency"])


def accuracy_table(records: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per (condition, length), top-1 / top-3 / TPR@1%FPR per system."""
    records = [r for r in records if r["mode"] == "clear"]
    systems = sorted({(r["system"], r["mode"]) for r in records},
                     key=lambda s: (s[1] != "clear", s[0] != "hushtune", s[0]))
    keys = sorted({(r["condition"], r["length_s"]) for r in records},
                  key=lambda k: (k[1], k[0] != "clean", k[0]))
    index = {(r["system"], r["mode"], r["condition"], r["length_s"]): r for r in records}
    head = "| condition | length | " + " | ".join(
        f"{s} ({m}) top-1 / top-3 / TPR@1%FPR" for s, m in systems) + " |"
    lines = [head, "|" + "---|" * (2 + len(systems))]
    for condition, length in keys:
        cells = []
        for system, mode in systems:
            r = index.get((system, mode, condition, length))
            cells.append("" if r is None else
                         f"{_pct(r['top1'])} / {_pct(r['top3'])} / {_pct(r['tpr_at_fpr1'])}"
                         f" (n={r['queries']})")
        lines.append(f"| {condition} | {length:g} s | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _systems(records: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({r["system"] for r in records},
                  key=lambda s: (not s.startswith("hushtune"), s))


def _ci(record: dict[str, Any]) -> str:
    low, high = record.get("top1_ci95") or (None, None)
    if low is None or high is None or _missing(low) or _missing(high):
        return _pct(record["top1"])
    return f"{_pct(record['top1'])} [{100 * low:.0f}-{100 * high:.0f}]"


def generalization_table(records: Sequence[dict[str, Any]]) -> str:
    """Markdown: the test-only families (and clean at every sample rate), top-1 with its 95 %
    interval and the SDK's decisions, per system."""
    chosen = [r for r in records if r["mode"] == "clear"
              and (r.get("test_only") or r.get("family") in ("clean", "sample_rate"))]
    systems = _systems(chosen)
    keys = sorted({(r["condition"], r["length_s"]) for r in chosen},
                  key=lambda k: (not _is_test_only(chosen, k), k[1] != 5.0, k[1], k[0]))
    index = {(r["system"], r["condition"], r["length_s"]): r for r in chosen}
    head = ("| condition | test-only | length | rate | " + " | ".join(
        f"{s}: top-1 [95 % CI] · right / wrong / unknown · false accept" for s in systems)
        + " |")
    lines = [head, "|" + "---|" * (4 + len(systems))]
    for condition, length in keys:
        cells = []
        for system in systems:
            r = index.get((system, condition, length))
            if r is None:
                cells.append("")
                continue
            decided = "" if _missing(r.get("right_match")) else (
                f" · {_pct(r['right_match'])} / {_pct(r['wrong_match'])} / "
                f"{_pct(r['said_unknown'])} · {_pct(r['false_accept'])}")
            cells.append(f"{_ci(r)}{decided} (n={r['queries']}+{r['unknown_queries']})")
        any_record = next(r for r in chosen if (r["condition"], r["length_s"]) == (condition,
                                                                                   length))
        lines.append(f"| {condition} | {'yes' if any_record.get('test_only') else 'no'} "
                     f"| {length:g} s | {any_record.get('sample_rate', '')} Hz | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _is_test_only(records: Sequence[dict[str, Any]], key: tuple[str, float]) -> bool:
    return any(r.get("test_only") for r in records if (r["condition"], r["length_s"]) == key)


def false_accept_summary(records: Sequence[dict[str, Any]], facts: dict[str, Any]) -> str:
    """One line per system with a decision: its false accepts pooled over every cell, beside
    the share the threshold was calibrated for (on held-out catalog songs, never these)."""
    lines = []
    for system in _systems(records):
        mine = [r for r in records if r["system"] == system and r["mode"] == "clear"
                and not _missing(r.get("false_accept")) and r.get("unknown_queries")]
        if not mine:
            continue
        n = sum(r["unknown_queries"] for r in mine)
        accepted = sum(r["false_accept"] * r["unknown_queries"] for r in mine)
        target = facts.get(f"{system}_threshold_target_false_accept")
        aim = "" if target is None else f" (calibrated for {_pct(target)})"
        lines.append(f"- {system}: unknown songs answered with a song in {_pct(accepted / n)} "
                     f"of {n:,} unknown-song queries over every condition{aim}.")
    return "\n".join(lines)


def decisions_table(records: Sequence[dict[str, Any]]) -> str:
    """Markdown: for every cell, what each system with a decision tells the user."""
    chosen = [r for r in records if r["mode"] == "clear" and not _missing(r.get("right_match"))]
    systems = _systems(chosen)
    keys = sorted({(r["condition"], r["length_s"]) for r in chosen},
                  key=lambda k: (k[1], k[0] != "clean", k[0]))
    index = {(r["system"], r["condition"], r["length_s"]): r for r in chosen}
    head = "| condition | length | " + " | ".join(
        f"{s}: right / wrong / unknown · false accept" for s in systems) + " |"
    lines = [head, "|" + "---|" * (2 + len(systems))]
    for condition, length in keys:
        cells = []
        for system in systems:
            r = index.get((system, condition, length))
            cells.append("" if r is None else
                         f"{_pct(r['right_match'])} / {_pct(r['wrong_match'])} / "
                         f"{_pct(r['said_unknown'])} · {_pct(r['false_accept'])}")
        lines.append(f"| {condition} | {length:g} s | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_generalization(records: Sequence[dict[str, Any]], path: Path) -> bool:
    """Top-1 with 95 % intervals on the test-only families and clean (5 s), per system; and
    what each system with a decision tells the user on the same queries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [r for r in records if r["mode"] == "clear" and r["length_s"] == 5.0
              and (r.get("test_only") or r["condition"] in ("clean", "rate_8k", "rate_16k"))]
    if not chosen:
        return False
    systems = _systems(chosen)
    conditions = sorted({r["condition"] for r in chosen},
                        key=lambda c: (_is_test_only(chosen, (c, 5.0)), c != "clean", c))
    index = {(r["system"], r["condition"]): r for r in chosen}
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7.5))
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        xs: list[float] = []
        ys: list[float] = []
        errs: list[list[float]] = [[], []]
        for j, condition in enumerate(conditions):
            r = index.get((system, condition))
            if r is None or _missing(r["top1"]):
                continue
            low, high = r.get("top1_ci95") or (r["top1"], r["top1"])
            xs.append(j + (i - (len(systems) - 1) / 2) * width)
            ys.append(100 * r["top1"])
            errs[0].append(100 * (r["top1"] - (low if low is not None else r["top1"])))
            errs[1].append(100 * ((high if high is not None else r["top1"]) - r["top1"]))
        top.bar(xs, ys, width, yerr=errs, capsize=2, label=system, color=f"C{i % 10}")
    top.set_xticks(range(len(conditions)), conditions, rotation=20, fontsize=8)
    top.set_ylabel("top-1 (%), 95 % CI")
    top.set_title("Catalog-song queries of 5 s; test-only families right of clean and rates")
    top.legend(fontsize=7)
    top.grid(alpha=0.3, axis="y")
    deciders = [s for s in systems
                if any(not _missing(index.get((s, c), {}).get("right_match")) for c in conditions)]
    width = 0.8 / max(1, len(deciders))
    for i, system in enumerate(deciders):
        base = [0.0] * len(conditions)
        xs = [j + (i - (len(deciders) - 1) / 2) * width for j in range(len(conditions))]
        for key, colour in (("right_match", "tab:green"), ("wrong_match", "tab:red"),
                            ("said_unknown", "tab:gray")):
            values = [100 * (index.get((system, c), {}).get(key) or 0.0) for c in conditions]
            bottom.bar(xs, values, width, bottom=base, color=colour, edgecolor="white",
                       label=key.replace("_", " ") if i == 0 else None)
            base = [b + v for b, v in zip(base, values, strict=True)]
        for x in xs:
            bottom.text(x, 101, system[:9], rotation=90, fontsize=6, ha="center", va="bottom")
    bottom.set_xticks(range(len(conditions)), conditions, rotation=20, fontsize=8)
    bottom.set_ylim(0, 125)
    bottom.set_ylabel("share of catalog-song queries (%)")
    bottom.set_title("What the user is told (each system's own threshold)")
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def fhe_sample_table(records: Sequence[dict[str, Any]]) -> str:
    """Markdown: the FHE sample, pooled over its conditions, with its sizes and times."""
    fhe = [r for r in records if r["mode"] == "fhe"]
    if not fhe:
        return "No FHE sample in this run."
    lines = [
        "| system | queries (known + unknown) | top-1 of known | upload | response "
        "| evaluation keys | server p50 | end to end p50 / p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system in sorted({r["system"] for r in fhe}):
        mine = [r for r in fhe if r["system"] == system]
        known = sum(r["queries"] for r in mine)
        unknown = sum(r["unknown_queries"] for r in mine)
        right = sum(r["top1"] * r["queries"] for r in mine if r["queries"])
        first = mine[0]
        lines.append(
            f"| {system} | {known} + {unknown} | {_pct(right / known if known else None)} "
            f"| {first['upload_bytes']:,} B | {first['response_bytes']:,} B "
            f"| {first['eval_key_bytes']:,} B | {_num(first['server_s_p50'], ' ms', 1000)} "
            f"| {_num(first['e2e_s_p50'], ' ms', 1000)} / "
            f"{_num(first['e2e_s_p95'], ' ms', 1000)} |"
        )
    return "\n".join(lines)


def latency_table(result: BenchResult) -> str:
    """Markdown: p50 and p95 of each step of a real FHE query."""
    lines = ["| step | p50 | p95 |", "|---|---|---|"]
    for step, values in result.latencies.items():
        lines.append(f"| {step} | {_num(values['p50'], ' ms', 1000)} | "
                     f"{_num(values['p95'], ' ms', 1000)} |")
    return "\n".join(lines)


def plot_accuracy_vs_snr(records: Sequence[dict[str, Any]], path: Path) -> bool:
    """Top-1 against SNR (pink and white noise), one line per system and noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    drawn = False
    systems = sorted({r["system"] for r in records if r["mode"] == "clear"})
    lengths = sorted({r["length_s"] for r in records})
    # one colour per system, one line style per query length
    colours = {system: f"C{i % 10}" for i, system in enumerate(systems)}
    styles = {length: ("-", "--", ":", "-.")[i % 4] for i, length in enumerate(lengths)}
    for axis, noise in zip(axes, ("pink", "white"), strict=True):
        for system in systems:
            for length in lengths:
                points = []
                for r in records:
                    if r["system"] != system or r["mode"] != "clear" or r["length_s"] != length:
                        continue
                    if r["condition"] == "clean":
                        points.append((40.0, r["top1"]))
                    elif r["condition"].startswith(noise + "_"):
                        points.append((float(r["condition"].split("_")[1][:-2]), r["top1"]))
                if len(points) >= 2:
                    points.sort()
                    axis.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o",
                              color=colours[system], linestyle=styles[length],
                              label=f"{system}, {length:g} s")
                    drawn = True
        axis.set_title(f"{noise} noise (40 = clean)")
        axis.set_xlabel("SNR (dB)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 (%)")
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return drawn


def plot_latency(result: BenchResult, path: Path) -> bool:
    """Stacked bar of the p50 of each step of a real FHE query."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [s for s in ("featurize", "encrypt", "upload", "server", "download", "decrypt")
             if s in result.latencies]
    if not steps:
        return False
    figure, axis = plt.subplots(figsize=(8, 2.6))
    left = 0.0
    for step in steps:
        width = 1000 * result.latencies[step]["p50"]
        axis.barh(["p50"], [width], left=left, label=f"{step} {width:.0f} ms")
        left += width
    axis.set_xlabel("milliseconds (one query, FHE over gRPC on loopback)")
    axis.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_roc(result: BenchResult, path: Path) -> bool:
    """ROC of known vs unknown songs (clean and pink 10 dB, 5 s), log-scaled FPR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.roc:
        return False
    figure, axis = plt.subplots(figsize=(6, 4))
    for key, (fpr, tpr) in sorted(result.roc.items()):
        axis.plot([max(f, 1e-3) for f in fpr], [100 * t for t in tpr], label=key.replace("|", ", "))
    axis.axvline(0.01, color="grey", linestyle=":", linewidth=1)
    axis.set_xscale("log")
    axis.set_xlabel("false-positive rate on unknown songs")
    axis.set_ylabel("correctly identified known songs (%)")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def other_sections(markdown: str) -> str:
    """The "## " sections of ``markdown`` not in OWN_SECTIONS, in their order, each up to the
    next "## " heading (its "###" subsections go with it)."""
    kept: list[str] = []
    keep = False
    for line in markdown.splitlines(keepends=True):
        if line.startswith("## "):
            keep = line.rstrip() not in OWN_SECTIONS
        if keep:
            kept.append(line)
    return "".join(kept).rstrip("\n") + "\n" if kept else ""


def write_markdown(result: BenchResult, out_dir: Path, title: str) -> Path:
    """BENCHMARKS.md with the figures, the tables and the plots beside it.

    Sections of an existing BENCHMARKS.md that this writer does not make (``other_sections``)
    are kept, after its own: other benchmarks write them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    general = plot_generalization(result.records, out_dir / "bench_generalization.png")
    if plot_accuracy_vs_snr(result.records, out_dir / "bench_accuracy_vs_snr.png"):
        plots.append(("Top-1 against noise", "bench_accuracy_vs_snr.png"))
    if plot_latency(result, out_dir / "bench_latency.png"):
        plots.append(("Where the time of a private query goes", "bench_latency.png"))
    if plot_roc(result, out_dir / "bench_roc.png"):
        plots.append(("Known against unknown songs", "bench_roc.png"))
    facts = result.facts
    lines = [
        f"# {title}",
        "",
        f"Produced by `{facts.get('command', '')}`.",
        "",
        GENERALIZATION,
        "",
        "Test-only families (speech babble, music underneath, a telephone channel, a small",
        "loudspeaker in a room; `hushtune/bench/unseen.py`) are conditions no training recipe may",
        "use. Each cell: top-1 with its 95 % Wilson interval; then, with the system's own",
        "threshold (the SDK's for hushtune), the share of catalog-song queries answered with",
        "the right song, a wrong song or \"unknown\"; then the share of unknown-song queries",
        "answered with a song. n = catalog-song + unknown-song queries.",
        "",
        generalization_table(result.records),
        "",
        false_accept_summary(result.records, result.facts),
        "",
        *(["![Generalization](bench_generalization.png)", ""] if general else []),
        DECISIONS,
        "",
        decisions_table(result.records),
        "",
        SETUP,
        "",
        *(f"- {key}: {value}" for key, value in facts.items() if key != "command"),
        "",
        "Systems: " + "; ".join(f"**{k}**: {v}" for k, v in SYSTEM_LABELS.items()) + ".",
        "Known-song queries count for top-1/top-3; TPR@1%FPR counts a known query as a true",
        "positive only when it is also ranked first, against queries of the held-out songs.",
        "",
        ACCURACY,
        "",
        accuracy_table(result.records),
        "",
        FHE_SAMPLE,
        "",
        "Every sampled query was also scored in clear mode; the run fails unless both modes",
        "give the same scores and the same top-3 (they did).",
        "",
        fhe_sample_table(result.records),
        "",
        LATENCY,
        "",
        latency_table(result),
        "",
        *(line for name, file in plots for line in (f"### {name}", "", f"![{name}]({file})", "")),
    ]
    path = out_dir / "BENCHMARKS.md"
    kept = other_sections(path.read_text()) if path.exists() else ""
    path.write_text("\n".join(lines) + "\n" + kept)  # lines end in a blank one
    write_json(result, out_dir / "benchmarks.json")
    return path
