"""Synthetic songs for scale benchmarks: music21's bundled scores rendered to audio.

score (music21) -> MIDI notes -> audio (``hushtune.bench.synth``, no soundfont), in a process
pool, deterministically: song ``i`` is always the same audio. A work is one score file, or one
tune of a multi-tune ABC file (the Essen, O'Neill and Aird collections hold about 11,700), so
music21 offers about 14,700 works, taken in a fixed shuffled order so any prefix mixes every
collection. Each song gets instruments from its index. Past the number of works, song ``i`` is
work ``i % W`` played as variant ``i // W`` (other key and tempo). Works that fail to parse are
skipped and reported. Every clip is cut or looped to the same length. Rendered audio is never
committed (some of the Palestrina editions reserve derivative electronic formats): render it
where it is used.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import multiprocessing
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.bench.corpus import Track
from hushtune.bench.synth import Note, render_notes
from hushtune.core.audio import SAMPLE_RATE

MANIFEST = "manifest.tsv"
"""Name of the file, next to the clips, that says which work and variant each song is."""
WORK_SUFFIXES = (".abc", ".krn", ".mxl", ".xml", ".musicxml", ".mid")
"""Score formats taken from the corpus (roman-numeral analyses are left out)."""
VARIANT_PROGRAMS = (0, 48, 73, 24, 19, 56, 40, 68, 11, 52, 80, 32, 71, 46, 61, 89)
"""General MIDI programs variants draw from: piano, strings, flute, guitar, organ, trumpet,
violin, oboe, vibraphone, choir, square lead, bass, clarinet, harp, brass section, pad."""
TRANSPOSITIONS = (0, 5, -3, 2, -5, 7, -2, 3, -7, 4, -4, 1)
"""Semitones each variant shifts by (variant v uses entry v mod 12)."""
TEMPI = (1.0, 1.18, 0.86, 1.1, 0.92, 1.25, 0.8, 1.05)
"""Tempo factors each variant plays at (variant v uses entry v mod 8)."""
DEFAULT_BPM = 100.0
"""Tempo of a score without a tempo mark, in quarter notes per minute."""
DEFAULT_VELOCITY = 80
"""MIDI velocity of a note without a dynamic."""
LOOP_GAP_SECONDS = 0.5
"""Silence between repeats when a short work is looped to fill a clip."""

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class Variant:
    """How a work is played: transposition and tempo factor (variant 0: as written)."""

    index: int
    transpose: int
    tempo: float


def variant(index: int) -> Variant:
    """Variant ``index`` (0: as written)."""
    if index < 0:
        raise ValueError(f"variant index must be >= 0, got {index}")
    return Variant(index, TRANSPOSITIONS[index % len(TRANSPOSITIONS)], TEMPI[index % len(TEMPI)])


def program_of(song: int, part: int) -> int:
    """General MIDI program that part ``part`` of song ``song`` is played on."""
    return VARIANT_PROGRAMS[(song * 7 + part * 3) % len(VARIANT_PROGRAMS)]


@dataclasses.dataclass(frozen=True)
class Work:
    """A score file, or tune ``tune`` (counted from 0) of a multi-tune ABC file."""

    path: Path
    tune: int | None = None

    @property
    def name(self) -> str:
        """Corpus-relative name, with ``#tune`` for one tune of a multi-tune file."""
        relative = _relative(self.path)
        return str(relative) if self.tune is None else f"{relative}#{self.tune}"


def _corpus_root() -> Path:
    from music21 import corpus

    return Path(corpus.__file__).resolve().parent


def _relative(path: Path) -> Path:
    root = _corpus_root()
    resolved = path.resolve()
    return resolved.relative_to(root) if resolved.is_relative_to(root) else path


def _abc_tunes(text: str) -> tuple[str, list[str]]:
    """The file header and the tunes (each from its ``X:`` line) of an ABC file."""
    lines = text.splitlines()
    starts = [k for k, line in enumerate(lines) if line.startswith("X:")]
    if not starts:
        return "", [text]
    bounds = [*starts, len(lines)]
    header = "\n".join(lines[: starts[0]])
    return header, ["\n".join(lines[a:b]) for a, b in itertools.pairwise(bounds)]


def corpus_works(seed: int = 21) -> list[Work]:
    """Every renderable work bundled with music21, in a fixed shuffled order."""
    from music21 import corpus

    paths = sorted(
        (Path(p) for p in corpus.getCorePaths() if Path(p).suffix.lower() in WORK_SUFFIXES),
        key=lambda p: str(_relative(p)),
    )
    works: list[Work] = []
    for path in paths:
        tunes = 1
        if path.suffix.lower() == ".abc":
            tunes = len(_abc_tunes(path.read_text(encoding="utf-8", errors="replace"))[1])
        works.extend([Work(path)] if tunes == 1 else [Work(path, k) for k in range(tunes)])
    order = np.random.default_rng(seed).permutation(len(works))
    return [works[k] for k in order]


def song_id(index: int) -> str:
    """File stem and catalog id of synthetic song ``index``."""
    return f"m21-{index:05d}"


def score_notes(work: Work) -> list[Note]:
    """The notes of a work as written, read from the parsed score (first score of an opus).

    Times come from quarter lengths at the score's first tempo mark (100 bpm without one).
    music21's MIDI-file translation, which would also expand repeats and merge ties, took 90%
    of the CPU of a render; clips are looped anyway, and a tie re-strikes its note.
    """
    from music21 import converter, stream, tempo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if work.tune is None:
            parsed = converter.parse(str(work.path))
        else:
            header, tunes = _abc_tunes(work.path.read_text(encoding="utf-8", errors="replace"))
            parsed = converter.parseData(header + "\n" + tunes[work.tune], format="abc")
    if isinstance(parsed, stream.Opus):
        parsed = parsed.scores[0]
    marks = list(parsed.recurse().getElementsByClass(tempo.MetronomeMark))
    bpm = float(marks[0].getQuarterBPM() or DEFAULT_BPM) if marks else DEFAULT_BPM
    seconds_per_quarter = 60.0 / min(max(bpm, 30.0), 240.0)
    parts: list[stream.Stream[Any]] = (
        list(parsed.parts) if isinstance(parsed, stream.Score) and parsed.parts else [parsed]
    )
    notes: list[Note] = []
    for part_index, part in enumerate(parts):
        for element in part.flatten().notes:
            start = float(element.offset) * seconds_per_quarter
            length = float(element.quarterLength) * seconds_per_quarter
            if length <= 0:
                continue  # grace notes
            velocity = int(element.volume.velocity or DEFAULT_VELOCITY)
            notes.extend(Note(int(p.midi), start, start + length, velocity, 0, part_index)
                         for p in element.pitches)
    return notes


def play(
    notes: Sequence[Note], how: Variant, seconds: float, song: int
) -> NDArray[np.float32]:
    """Audio of song ``song``: ``notes`` played as ``how`` on the song's instruments, exactly
    ``seconds`` long, looped when shorter."""
    if not notes:
        raise ValueError("the score has no notes")
    length = max(n.end for n in notes) / how.tempo + LOOP_GAP_SECONDS
    played = []
    for repeat in range(int(np.ceil(seconds / length))):
        shift = repeat * length
        for n in notes:
            pitch = min(108, max(21, n.pitch + how.transpose))
            played.append(Note(pitch, shift + n.start / how.tempo, shift + n.end / how.tempo,
                               n.velocity, program_of(song, n.part), n.part))
    return render_notes(played, seconds)


@dataclasses.dataclass(frozen=True)
class _Job:
    work: Work
    songs: tuple[tuple[int, int], ...]
    """(song index, variant index) pairs to render from this work."""
    seconds: float
    out: Path


@dataclasses.dataclass(frozen=True)
class _Done:
    work: Work
    rendered: tuple[tuple[int, int], ...]
    cpu_seconds: float
    error: str | None


def _render_work(job: _Job) -> _Done:
    """Render every song of one work (parsed once); already rendered clips are kept."""
    import soundfile

    started = time.process_time()
    todo = [(i, v) for i, v in job.songs if not (job.out / f"{song_id(i)}.flac").exists()]
    if not todo:
        return _Done(job.work, job.songs, 0.0, None)
    try:
        notes = score_notes(job.work)
        for i, v in todo:
            y = play(notes, variant(v), job.seconds, i)
            if float(np.abs(y).max()) == 0.0:
                raise ValueError("rendered silence")
            target = job.out / f"{song_id(i)}.flac"
            partial = target.with_suffix(".part")
            soundfile.write(str(partial), y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            partial.rename(target)
    except Exception as exc:  # a broken score is skipped, not fatal
        return _Done(job.work, (), time.process_time() - started, f"{type(exc).__name__}: {exc}")
    return _Done(job.work, job.songs, time.process_time() - started, None)


@dataclasses.dataclass(frozen=True)
class RenderSummary:
    """What a render run produced."""

    requested: int
    rendered: int
    failed_works: tuple[str, ...]
    cpu_seconds: float
    """CPU time of the clips rendered by this run (kept clips cost nothing)."""
    new_clips: int
    works: int

    @property
    def cpu_seconds_per_clip(self) -> float:
        """Mean CPU seconds per newly rendered clip (parsing shared by a work's variants)."""
        return self.cpu_seconds / self.new_clips if self.new_clips else 0.0


def render_corpus(
    count: int,
    seconds: float,
    out: Path,
    *,
    workers: int = 2,
    max_works: int | None = None,
    works: Sequence[Work] | None = None,
    progress: Progress | None = None,
) -> RenderSummary:
    """Render synthetic songs 0 to ``count - 1`` into ``out`` as FLAC, plus ``manifest.tsv``.

    ``max_works`` limits the distinct works (each parsed once, then played in several
    variants): parsing is most of the cost. Idempotent: clips already in ``out`` are kept, so
    an interrupted run resumes.
    """
    if count <= 0 or seconds <= 0:
        raise ValueError(f"count and seconds must be positive, got {count} and {seconds}")
    all_works = list(works) if works is not None else corpus_works()
    all_works = all_works[:max_works] if max_works else all_works
    n_works = len(all_works)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        _Job(w, tuple((i, i // n_works) for i in range(k, count, n_works)), seconds, out)
        for k, w in enumerate(all_works[: min(count, n_works)])
    ]
    report = progress or (lambda *_: None)
    rendered: dict[int, tuple[Work, int]] = {}
    failed: list[str] = []
    cpu, new = 0.0, 0
    context = multiprocessing.get_context("fork")
    with context.Pool(max(1, workers)) as pool:
        results = pool.imap_unordered(_render_work, jobs, chunksize=4)
        for done, result in enumerate(results, start=1):
            cpu += result.cpu_seconds
            if result.error is not None:
                failed.append(f"{result.work.name}: {result.error[:200]}")
            elif result.cpu_seconds > 0:
                new += len(result.rendered)
            for i, v in result.rendered:
                rendered[i] = (result.work, v)
            report("render", done, len(jobs))
            if done % 500 == 0:  # an interrupted run still leaves a manifest of its clips
                _write_manifest(out, rendered, seconds)
    _write_manifest(out, rendered, seconds)
    return RenderSummary(count, len(rendered), tuple(failed), cpu, new, n_works)


def _write_manifest(out: Path, rendered: dict[int, tuple[Work, int]], seconds: float) -> None:
    with (out / MANIFEST).open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["song_id", "work", "variant", "transpose", "tempo", "programs", "seconds"])
        for i in sorted(rendered):
            work, v = rendered[i]
            how = variant(v)
            programs = ",".join(str(program_of(i, part)) for part in range(4))
            writer.writerow([song_id(i), work.name, v, how.transpose, how.tempo, programs, seconds])


def synthetic_tracks(folder: Path, limit: int | None = None) -> list[Track]:
    """Rendered songs of ``folder`` in song order (the first ``limit`` of them), as tracks."""
    import soundfile

    paths = sorted(folder.glob("m21-*.flac"))[:limit]
    tracks = []
    for path in paths:
        info = soundfile.info(str(path))
        tracks.append(Track(path.stem, path, info.frames / info.samplerate, "music21",
                            synthetic=True))
    return tracks


def render_command(
    count: int,
    seconds: float,
    out: Path,
    workers: int,
    max_works: int | None = None,
    progress: Progress | None = None,
) -> int:
    """``hushtune corpus render``: render, then print what was made and what it cost."""
    summary = render_corpus(count, seconds, out, workers=workers, max_works=max_works,
                            progress=progress)
    print(f"{summary.rendered} of {summary.requested} synthetic songs of {seconds:g} s in {out} "
          f"({summary.works} music21 works, {len(summary.failed_works)} skipped)")
    for failure in summary.failed_works:
        print(f"  skipped {failure}")
    if summary.new_clips:
        print(f"{summary.new_clips} clips rendered now, "
              f"{summary.cpu_seconds_per_clip:.2f} CPU-s per clip (parsing included)")
    return 0
