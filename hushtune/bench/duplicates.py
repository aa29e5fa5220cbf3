"""Groups of tracks that share audio, so the benchmark can treat each group as one song.

Some tracks of the development corpus share audio: a title theme that is a level's music
shifted in time, an ambient track and its variant, passages common to two pieces, a piece two
games ship in different masters. An excerpt of one such track is, rightly, found in the other,
yet the benchmark would count it as a wrong answer (top-1) or as an unknown song "found" in
the catalog (open set).

``find_shared_audio`` finds them with the project's own landmark fingerprinter
(``hushtune.bench.landmarks``), which only matches literally shared audio, not a re-arranged
theme:

1. every track (its first ``max_track_seconds``) is fingerprinted and indexed, all at once;
2. ``probes`` excerpts of ``seconds_per_probe`` seconds, at evenly spaced offsets, are taken
   from every track and scored against the index;
3. an excerpt *hits* another track when its aligned-match count there reaches
   ``min_aligned`` (an excerpt's match with its own track counts hundreds of aligned hashes,
   one with an unrelated track about ten and 31 at most, see ``MIN_ALIGNED``);
4. two tracks share audio when at least ``min_probe_hits`` excerpts of one hit the other (in
   either direction); the pairs are joined into groups (union-find).

``write_groups`` and ``load_groups`` keep the groups in a TSV file, one group per line
(``dev_duplicates.tsv`` for the development corpus, made by ``hushtune corpus duplicates``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hushtune.bench.corpus import Track
from hushtune.bench.landmarks import Fingerprint, LandmarkBaseline
from hushtune.core.audio import SAMPLE_RATE, load_audio

DEV_DUPLICATES = Path(__file__).with_name("dev_duplicates.tsv")
"""Groups of development tracks that share audio, as written by ``hushtune corpus duplicates``."""

MIN_ALIGNED = 35
"""Aligned matches from which a 5 s excerpt counts as found in a track.

Measured on the development corpus (366 tracks, 6 probes of 5 s each, 2,196 probes): a
probe's score on its own track has a median of 341 (5% below 118: quiet passages); over the
801,408 scores of probes on tracks outside their group the highest is 31 and, per pair of
tracks, the second-highest probe is 29 at most; between tracks of the groups found, 67
probe scores reach 35 or more (up to 725). Any threshold from 30 to 40 gives the same groups.
"""

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class ProbeScores:
    """Every probe of every track scored against every track."""

    track_ids: tuple[str, ...]
    scores: NDArray[np.float64]
    """Aligned-match counts, shape (n_tracks, probes, n_tracks): track, its probe, indexed track."""
    offsets_s: NDArray[np.float64]
    """Start of each probe in its track (s), shape (n_tracks, probes)."""


def probe_scores(
    tracks: Sequence[Track],
    *,
    seconds_per_probe: float = 5.0,
    probes: int = 6,
    max_track_seconds: float = 600.0,
    progress: Progress | None = None,
) -> ProbeScores:
    """Fingerprint every track and its probes (one decode each), index them, score the probes.

    Tracks shorter than ``seconds_per_probe`` give one probe, the whole track, repeated.
    """
    if probes < 1 or seconds_per_probe <= 0:
        raise ValueError("probes must be at least 1 and seconds_per_probe positive")
    report = progress or (lambda *_: None)
    system = LandmarkBaseline()
    probe_samples = int(seconds_per_probe * SAMPLE_RATE)
    track_prints: list[Fingerprint] = []
    probe_prints: list[list[Fingerprint]] = []
    offsets = np.zeros((len(tracks), probes))
    for i, track in enumerate(tracks):
        report("fingerprint", i, len(tracks))
        y = load_audio(track.path, max_seconds=None)[: int(max_track_seconds * SAMPLE_RATE)]
        track_prints.append(system.track_features(y))
        room = max(y.size - probe_samples, 0)
        starts = [int(room * (k + 0.5) / probes) for k in range(probes)]
        offsets[i] = np.array(starts) / SAMPLE_RATE
        probe_prints.append(
            [system.query_features(y[s : s + probe_samples]) for s in starts]
        )
    report("fingerprint", len(tracks), len(tracks))
    system.fit(track_prints)
    del track_prints
    scores = np.zeros((len(tracks), probes, len(tracks)))
    for i, prints in enumerate(probe_prints):
        report("score", i, len(tracks))
        for k, query in enumerate(prints):
            scores[i, k] = system.score(query)[0]
    report("score", len(tracks), len(tracks))
    return ProbeScores(tuple(t.track_id for t in tracks), scores, offsets)


def shared_pairs(
    probe: ProbeScores, *, min_aligned: float = MIN_ALIGNED, min_probe_hits: int = 2
) -> list[tuple[int, int, int]]:
    """Pairs of tracks that share audio: (i, j, hits) with i < j and hits the larger of the
    number of i's probes that hit j and of j's probes that hit i."""
    hits = (probe.scores >= min_aligned).sum(axis=1)  # (track, indexed track)
    np.fill_diagonal(hits, 0)
    both = np.maximum(hits, hits.T)
    i, j = np.nonzero(np.triu(both >= min_probe_hits, k=1))
    return [(int(a), int(b), int(both[a, b])) for a, b in zip(i, j, strict=True)]


def groups_from_pairs(
    track_ids: Sequence[str], pairs: Sequence[tuple[int, int]]
) -> list[list[str]]:
    """Join pairs of track indices into groups (union-find) of at least two track ids."""
    parent = list(range(len(track_ids)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[str]] = {}
    for index, track_id in enumerate(track_ids):
        members.setdefault(root(index), []).append(track_id)
    return sorted(sorted(group) for group in members.values() if len(group) >= 2)


def find_shared_audio(
    tracks: Sequence[Track],
    *,
    seconds_per_probe: float = 5.0,
    probes: int = 6,
    min_aligned: float = MIN_ALIGNED,
    min_probe_hits: int = 2,
    max_track_seconds: float = 600.0,
    progress: Progress | None = None,
) -> list[list[str]]:
    """Groups of tracks that share audio (see the module docstring for the method).

    Returns:
        Groups of track ids, each sorted and of at least two tracks; the list is sorted.
    """
    probe = probe_scores(
        tracks, seconds_per_probe=seconds_per_probe, probes=probes,
        max_track_seconds=max_track_seconds, progress=progress,
    )
    pairs = shared_pairs(probe, min_aligned=min_aligned, min_probe_hits=min_probe_hits)
    return groups_from_pairs(probe.track_ids, [(a, b) for a, b, _ in pairs])


def write_groups(groups: Sequence[Sequence[str]], path: Path, *, made_by: str = "") -> None:
    """Write ``groups`` to ``path``, one group per line, track ids tab-separated, after a
    comment line that says how they were made (``made_by``, e.g. the command)."""
    lines = [f"# groups of tracks that share audio; made by: {made_by or 'find_shared_audio'}"]
    for group in groups:
        if any("\t" in t or "\n" in t for t in group):
            raise ValueError(f"track ids must not hold tabs or newlines: {group}")
        lines.append("\t".join(group))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_groups(path: Path) -> list[list[str]]:
    """The groups written by ``write_groups`` (comment and blank lines skipped).

    Raises:
        ValueError: a track appears in two groups, or a group holds fewer than two tracks.
    """
    groups: list[list[str]] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        group = line.split("\t")
        if len(group) < 2 or len(set(group)) != len(group) or seen & set(group):
            raise ValueError(
                f"{path}:{number}: a group needs two or more tracks, each in one group only"
            )
        seen.update(group)
        groups.append(group)
    return groups
