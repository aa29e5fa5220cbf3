"""docs/SCALE_ACCURACY.md and its figure, from the results of ``hushtune.bench.scale_accuracy``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONDITIONS = ("clean", "pink_10dB")
FIGURE = "scale_accuracy.png"
FEATURES_BEFORE_RECORDING = "mfcc20-delta-chroma12-contrast7-meanstd-1s-v2"
"""What runs that did not record their features used (all before v3)."""


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}%"  # nan is not equal to itself


def _figure(results: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["sizes"]
    sizes = [r["songs"] for r in rows]
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for kind, style in (("real", "-"), ("synthetic", "--")):
        for condition, marker in zip(CONDITIONS, ("o", "s"), strict=True):
            axis.plot(sizes, [100 * r[f"top1_{kind}_{condition}"] for r in rows], style,
                      marker=marker, label=f"{kind}, {condition}")
    axis.set_xscale("log")
    axis.set_xticks(sizes, [f"{s:,}" for s in sizes])
    axis.minorticks_off()
    axis.set_xlabel("songs in the catalog")
    axis.set_ylabel("top-1 (%)")
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("Top-1 of 5 s queries against catalog size (clear mode)")
    figure.tight_layout()
    path = out / FIGURE
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _build_section(build: dict[str, Any]) -> list[str]:
    """The section on a catalog built and grown with the CLI (``hushtune.bench.scale_build``)."""
    built, grown = build["build"], build["update"]
    top = build["top1"]
    rows = [("built", built["catalog_version"]), ("after the update", grown["catalog_version"])]
    lines = [
        "## A 10,000-song catalog built and grown with the CLI" if build["songs"] == 10000
        else f"## A {build['songs']:,}-song catalog built and grown with the CLI",
        "",
        f"Features: `{build.get('feature_version', FEATURES_BEFORE_RECORDING)}`.",
        "",
        f"Made by `{build['command']}` on {build['cpus']} cores: `hushtune build FOLDER --engine "
        f"ckks` on {build['real']} real and {build['synthetic']:,} rendered songs, in a fresh "
        "data folder (embedded Redis, empty feature cache), then `hushtune update --add` of "
        f"{grown['songs'] - built['songs']} more rendered songs. This is the catalog builder's "
        "own recipe (each track whole and clean plus two passes of 10 s excerpts under random "
        f"degradations), not the cheaper one above; `--trainer auto` chose the {built['trainer']} "
        "trainer (streaming: its threshold comes from up to 200 held-out songs added back). "
        "Top-1 is read "
        "from the published versions' own weights in clear mode (CKKS ranks as clear mode: "
        "docs/BENCHMARKS.md, Scale); queries as above.",
        "",
        "| step | wall clock | songs | trainer |",
        "|---|---:|---:|---|",
        f"| build: featurize every track | {build['featurize_wall_s'] / 60:.1f} min "
        f"| {built['songs']:,} | |",
        f"| build: all (featurize, train, calibrate, export, publish) "
        f"| {build['build_wall_s'] / 60:.1f} min | {built['songs']:,} | {built['trainer']} |",
        f"| update: add {grown['songs'] - built['songs']} songs | {build['update_wall_s']:.0f} s "
        f"| {grown['songs']:,} | {grown['trainer']} |",
        "",
        f"Peak resident memory of the largest process: {build['peak_rss_mb']:,} MB.",
        "",
        "| version | real clean | real pink 10 dB | synthetic clean | synthetic pink 10 dB "
        "| added clean | added pink 10 dB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, version in rows:
        t = top[version]
        lines.append(
            f"| {name} | {_pct(t['real_clean'])} | {_pct(t['real_pink_10dB'])} "
            f"| {_pct(t['synthetic_clean'])} | {_pct(t['synthetic_pink_10dB'])} "
            f"| {_pct(t['added_clean'])} | {_pct(t['added_pink_10dB'])} |"
        )
    notes = build.get("notes") or []
    return [*lines, "", *(f"- {note}" for note in notes), *([""] if notes else [])]


def write_report(results: dict[str, Any], out: Path) -> Path:
    """Write the table, the incremental-add figures and the PNG; returns the markdown path."""
    _figure(results, out)
    base = results["sizes"][0].get("start_rss_mb", "?")
    lines = [
        "# Scale accuracy (clear mode)",
        "",
        f"Features: `{results.get('feature_version', FEATURES_BEFORE_RECORDING)}`.",
        "",
        f"Made by `{results.get('command', 'python -m hushtune.bench.scale_accuracy')}` "
        f"in {results.get('wall_s', 0):.0f} s. Catalogs: the {results.get('real_tracks', 366)} "
        "real development tracks plus rendered music21 songs (`hushtune corpus render`, 30 s "
        f"each; {results.get('rendered_synthetic', 0):,} rendered when this ran); real and "
        "synthetic songs are counted apart. Each track is featurized once into a per-track cache "
        "(clean, plus 15 s of it under pink 10 dB, white 10 dB and pink 0 dB noise: a cheaper "
        "recipe than the catalog builder's). Queries: 5 s at random offsets, one per song and "
        "condition, on every real track (a track sharing audio with the right one counts) and on "
        "up to 500 synthetic songs per catalog. The open-set threshold is calibrated on "
        f"{results.get('unknown_songs', 200)} rendered songs outside every catalog. "
        "Models: streaming softmax "
        "(`hushtune/services/featurizer/streaming.py`), each trained in a fresh process; "
        "peak memory is "
        "that process's maximum resident set (its interpreter with numpy, torch and sklearn "
        f"loaded, before any feature, peaked at {base} MB).",
        "",
        "| songs | real + synthetic | train (s) | peak memory (MB) | real clean | real pink 10 dB "
        "| synthetic clean | synthetic pink 10 dB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["sizes"]:
        lines.append(
            f"| {r['songs']:,} | {r['real']} + {r['synthetic']:,} | {r['train_s']:.0f} "
            f"| {r['peak_rss_mb']:,} | {_pct(r['top1_real_clean'])} "
            f"| {_pct(r['top1_real_pink_10dB'])} | {_pct(r['top1_synthetic_clean'])} "
            f"| {_pct(r['top1_synthetic_pink_10dB'])} |"
        )
    lines += ["", f"![top-1 against catalog size]({FIGURE})", ""]
    if results.get("silent_queries_skipped"):
        lines += [f"{results['silent_queries_skipped']} planned queries fell on silence and "
                  "were left out.", ""]
    if results.get("skipped_sizes"):
        lines += [f"Not built (too few rendered songs, {results['rendered_synthetic']:,} "
                  f"available): {', '.join(str(s) for s in results['skipped_sizes'])}.", ""]
    costs = results.get("trainer_cost") or []
    if isinstance(costs, dict):
        costs = [costs]
    if costs:
        lines += [
            "## Trainer cost at larger catalogs",
            "",
            "Where too few songs were rendered, the catalog is the real tracks plus the rendered "
            "songs reused cyclically: each class still gets its own copy of the windows, so time "
            "and memory are those of that many songs, but accuracy means nothing and is not "
            "measured. For comparison, sklearn's full-batch LogisticRegression at 10,000 classes "
            "took 282 s and 5.6 GB here.",
            "",
            "| classes | distinct tracks | train (s) | peak memory (MB) | add songs | add (s) |",
            "|---:|---:|---:|---:|---:|---:|",
            *(f"| {c['classes']:,} | {c['distinct_tracks']:,} | {c['train_s']:.0f} "
              f"| {c['peak_rss_mb']:,} | {c['added']} | {c['add_s']:.0f} |" for c in costs),
            "",
        ]
    add = results.get("add")
    if add:
        lines += [
            "## Adding songs without retraining",
            "",
            f"{add['added']} songs added to the {add['songs_before']:,}-song catalog: new rows "
            f"trained with the old rows frozen, then the open-set threshold recalibrated, in "
            f"{add['add_s']:.0f} s (threshold {add['threshold_before']} -> "
            f"{add['threshold_after']}).",
            "",
            "| queries | clean | pink 10 dB |",
            "|---|---:|---:|",
            f"| old songs, before | {_pct(add['old_top1_before_clean'])} "
            f"| {_pct(add['old_top1_before_pink_10dB'])} |",
            f"| old songs, after | {_pct(add['old_top1_after_clean'])} "
            f"| {_pct(add['old_top1_after_pink_10dB'])} |",
            f"| added songs | {_pct(add['new_top1_clean'])} | {_pct(add['new_top1_pink_10dB'])} |",
            "",
        ]
    built = out / "scale_build.json"
    if built.exists():
        lines += _build_section(json.loads(built.read_text()))
    if results.get("notes"):
        lines += ["## Notes", "", *(f"- {note}" for note in results["notes"]), ""]
    path = out / "SCALE_ACCURACY.md"
    path.write_text("\n".join(lines))
    return path
