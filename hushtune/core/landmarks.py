"""Landmark fingerprints (Wang 2003, "An Industrial-Strength Audio Search Algorithm") and the
fixed-size records that carry a catalog song's landmarks to the client (issue 14).

One module for the SDK (queries), the catalog builder (records) and the benchmark, so the
three cannot drift. The pipeline, for tracks and queries alike:

1. resample to ``LandmarkConfig.sr`` and take the magnitude STFT in decibels;
2. keep the spectral peaks: maxima of their time-frequency neighbourhood above a floor,
   thinned to the strongest few per second;
3. pair each peak (the anchor) with the first few peaks of a target zone just after it and
   pack (anchor bin, target bin, frame difference) into one 24-bit hash, kept with the
   anchor's frame and the level of the pair's weaker peak (its strength, for thinning).

A match lines many hashes up on one time offset (record frame minus query frame); chance
matches scatter. ``aligned_count`` counts the best offset, with the next frame, since a query
starts anywhere inside a hop.

**Records** (docs/DESIGN.md, "Decision"): PIR records all have one size, so a song's print is
thinned to a fixed budget (``encode_record``): the strongest hashes of each one-second block
at the even rate that fills the budget, a hash with both peaks in 300-3,400 Hz ranked
``BAND_BONUS_DB`` louder. Only the first ``MAX_FRAMES`` frames (25 minutes) are kept.

A record is a run of ``ENTRY_BYTES`` = 4-byte entries sorted by (frame, hash): the hash in 3
little-endian bytes, then the anchor frame's difference from the previous entry's (the
first entry's from frame 0) in 1 byte, where the frame itself would take 2. A gap over
``MAX_STEP`` frames is bridged by skip entries (hash 0, difference ``MAX_STEP``) before the
entry that carries the rest, so skips share the budget with hashes (``thin_record``). No
hash is 0 (its frame difference is at least ``min_dt`` >= 1), so hash 0 with difference 0
is padding: it ends the record, and an all-zero record decodes to no hashes.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hushtune.core.audio import SAMPLE_RATE

FREQ_BITS = 9
"""Bits of each peak's frequency bin in a hash."""
DT_BITS = 6
"""Bits of the frame difference in a hash."""
HASH_BITS = 2 * FREQ_BITS + DT_BITS
"""24: a hash fits 3 bytes."""
ENTRY_BYTES = 4
"""Bytes of one record entry: 3 of hash, 1 of frame difference from the previous entry."""
MAX_STEP = 255
"""Largest frame difference one entry carries; a skip entry (hash 0) advances this much."""
MAX_FRAMES = 1 << 16
"""Anchor frames a record covers: 25 minutes at 43 frames a second (as when frames took 16
bits, so records keep the same hashes)."""
RETHIN_TRIES = 3
"""Times ``thin_record`` re-thins to a smaller budget when skip entries overflow the record
before it drops the weakest hashes instead."""
SHARED_BAND_HZ = (300.0, 3400.0)
"""Narrow-band telephony (ITU-T G.712): the band every capture channel carries."""
BAND_BONUS_DB = 10.0
"""How much louder (dB) a hash with both peaks in ``SHARED_BAND_HZ`` ranks when a record is
thinned: a bonus, not a rule, so loud low peaks (which survive speed changes) stay."""
_OFFSET_BIAS = 1 << 31
"""Added to (record frame - query frame) so offsets pack into a non-negative key."""
_KEY_STRIDE = 1 << 10
"""Peak key = frame * _KEY_STRIDE + bin (bins are below 2**9)."""
_FREQ_MASK = (1 << FREQ_BITS) - 1
_DT_MASK = (1 << DT_BITS) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
"""Multiplier of the bag's hash (Knuth's multiplicative hashing, 2^64 / golden ratio)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LandmarkConfig:
    """Every tuning constant of the fingerprinter, in one place."""

    sr: int = 11025
    """Analysis rate (Hz); ``SAMPLE_RATE`` must be a multiple of it. 11025 keeps up to 5.5 kHz."""
    n_fft: int = 1024
    """STFT window (samples): 93 ms at 11025 Hz, 10.8 Hz per bin."""
    hop_length: int = 256
    """STFT hop (samples): 23 ms at 11025 Hz, the time unit of peaks and offsets."""
    min_bin: int = 2
    """Lowest frequency bin a peak may sit in (drops DC and rumble)."""
    max_bin: int = 480
    """Highest frequency bin (exclusive) a peak may sit in; at most 2**9."""
    neighbourhood_bins: int = 31
    """Height of the neighbourhood a peak must be the maximum of, in bins."""
    neighbourhood_frames: int = 21
    """Width of that neighbourhood, in frames."""
    floor_db: float = -70.0
    """Peaks quieter than this (dB re full scale of the STFT magnitude) are dropped."""
    peaks_per_second: float = 30.0
    """At most this many peaks per second are kept, the strongest of each one-second block."""
    fan_out: int = 8
    """Targets paired with each anchor: the first ones in its target zone."""
    min_dt: int = 1
    """Target zone start, in frames after the anchor; at least 1, so no hash is 0."""
    max_dt: int = 63
    """Target zone end, in frames after the anchor; below 2**6."""
    max_df: int = 64
    """Target zone half height, in bins around the anchor's frequency."""
    min_query_seconds: float = 1.0
    """Shorter queries are refused: too few landmarks to align."""

    def __post_init__(self) -> None:
        if SAMPLE_RATE % self.sr:
            raise ValueError(f"analysis rate {self.sr} must divide {SAMPLE_RATE}")
        if self.max_bin > 1 << FREQ_BITS or self.max_dt >= 1 << DT_BITS or self.min_dt < 1:
            raise ValueError("max_bin, min_dt or max_dt do not fit the hash layout")

    @property
    def frames_per_second(self) -> float:
        """STFT frames per second of signal."""
        return self.sr / self.hop_length


DEFAULT_CONFIG = LandmarkConfig()


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """The landmarks of one signal: parallel arrays, one entry per anchor-target pair."""

    hashes: NDArray[np.uint32]
    """Packed (anchor bin, target bin, frame difference), shape (n_pairs,)."""
    times: NDArray[np.int32]
    """Frame of each pair's anchor, shape (n_pairs,)."""
    n_peaks: int = 0
    """Spectral peaks the pairs were made from (0 for a decoded record)."""
    strength: NDArray[np.float32] | None = None
    """Per pair, the level (dB) of its weaker peak: what thinning ranks by. None for a decoded
    record (records are thinned already)."""
    seconds: float = 0.0
    """Length of the signal (s); 0 when unknown (a decoded record)."""


def spectral_peaks_db(
    y: NDArray[np.float32], config: LandmarkConfig = DEFAULT_CONFIG
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float32]]:
    """The spectral peaks of ``y`` (mono, at ``SAMPLE_RATE``), sorted by frame then bin.

    Returns:
        (frames, bins, level in dB re full scale of the STFT magnitude), each (n_peaks,).
    """
    # Imported here: scipy.signal pulls in scipy.stats, 0.4 s of every CLI start otherwise.
    from scipy import ndimage, signal

    factor = SAMPLE_RATE // config.sr
    y_low = signal.resample_poly(y, 1, factor) if factor > 1 else y
    if y_low.size < config.n_fft:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    _, _, stft = signal.stft(
        y_low, nperseg=config.n_fft, noverlap=config.n_fft - config.hop_length,
        boundary=None, padded=False,
    )
    magnitude_db = 20.0 * np.log10(np.abs(stft[config.min_bin : config.max_bin]) + 1e-10)
    neighbourhood_max = ndimage.maximum_filter(
        magnitude_db, size=(config.neighbourhood_bins, config.neighbourhood_frames),
        mode="constant", cval=-np.inf,
    )
    is_peak = (magnitude_db == neighbourhood_max) & (magnitude_db > config.floor_db)
    bins, frames = np.nonzero(is_peak)
    strength = magnitude_db[bins, frames]
    keep = _strongest_per_block(frames, strength, config.peaks_per_second, config)
    order = np.lexsort((bins[keep], frames[keep]))
    return (
        frames[keep][order].astype(np.int32),
        (bins[keep][order] + config.min_bin).astype(np.int32),
        strength[keep][order].astype(np.float32),
    )


def spectral_peaks(
    y: NDArray[np.float32], config: LandmarkConfig = DEFAULT_CONFIG
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """``spectral_peaks_db`` without the levels: (frames, bins)."""
    frames, bins, _ = spectral_peaks_db(y, config)
    return frames, bins


def _block_shape(per_second: float, config: LandmarkConfig) -> tuple[int, int]:
    """(frames per block of about one second, items kept per block at ``per_second``)."""
    block_frames = max(1, round(config.frames_per_second))
    return block_frames, max(1, round(per_second * block_frames / config.frames_per_second))


def _strongest_per_block(
    frames: NDArray[np.integer[Any]], strength: NDArray[np.floating[Any]], per_second: float,
    config: LandmarkConfig,
) -> NDArray[np.intp]:
    """Indices (ascending) of the ``per_second`` strongest items of each one-second block."""
    block_frames, per_block = _block_shape(per_second, config)
    block = frames // block_frames
    order = np.lexsort((-strength, block))
    sorted_block = block[order]
    rank = np.arange(order.size) - np.searchsorted(sorted_block, sorted_block, side="left")
    return np.sort(order[rank < per_block])


def landmark_pairs(
    frames: NDArray[np.int32], bins: NDArray[np.int32], config: LandmarkConfig = DEFAULT_CONFIG
) -> Fingerprint:
    """Pair each peak with the first ``fan_out`` peaks of its target zone and hash the pairs.

    Args:
        frames, bins: peaks sorted by frame, as from ``spectral_peaks``.
    """
    n = frames.size
    target = np.arange(n)[:, None] + np.arange(1, _look_ahead(config) + 1)[None, :]
    valid = target < n
    target = np.minimum(target, max(n - 1, 0))
    dt = frames[target] - frames[:, None]
    df = bins[target] - bins[:, None]
    valid &= (dt >= config.min_dt) & (dt <= config.max_dt) & (np.abs(df) <= config.max_df)
    valid &= np.cumsum(valid, axis=1) <= config.fan_out
    anchor, column = np.nonzero(valid)
    hashes = (
        (bins[anchor].astype(np.uint32) << (FREQ_BITS + DT_BITS))
        | (bins[target[anchor, column]].astype(np.uint32) << DT_BITS)
        | dt[anchor, column].astype(np.uint32)
    )
    return Fingerprint(hashes, frames[anchor].astype(np.int32), int(n))


def peaks_of(fp: Fingerprint) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """The distinct peaks (frames, bins) that ``fp``'s pairs were made of, sorted by frame then
    bin: each hash names its anchor (at its time) and its target (``dt`` frames later)."""
    anchor_bin = ((fp.hashes >> (FREQ_BITS + DT_BITS)) & _FREQ_MASK).astype(np.int64)
    target_bin = ((fp.hashes >> DT_BITS) & _FREQ_MASK).astype(np.int64)
    times = fp.times.astype(np.int64)
    keys = np.unique(np.concatenate([
        times * _KEY_STRIDE + anchor_bin,
        (times + (fp.hashes & _DT_MASK).astype(np.int64)) * _KEY_STRIDE + target_bin]))
    return (keys // _KEY_STRIDE).astype(np.int32), (keys % _KEY_STRIDE).astype(np.int32)


def at_speed(
    fp: Fingerprint, speed: float, config: LandmarkConfig = DEFAULT_CONFIG
) -> Fingerprint:
    """The landmarks ``fp`` would have had if its signal, heard ``speed`` times faster than
    the recording (pitch moving with it, as a turntable or a resampling does), were played
    back at the recording's own speed: its peaks' frames stretched by ``speed``, their bins
    divided by it, re-paired.

    The query side's answer to speed changes: a record is aligned against the query at a few
    hypothesised speeds (``evidence.SPEEDS``), all on the client; hashes of a 2 % faster query
    share few of their bins and frame differences with the record's otherwise.
    """
    if not 0.5 <= speed <= 2.0:
        raise ValueError(f"speed {speed} is outside 0.5 to 2")
    frames, bins = peaks_of(fp)
    if speed == 1.0:
        return landmark_pairs(frames, bins, config)
    frames = np.rint(frames * speed).astype(np.int32)
    bins = np.rint(bins / speed).astype(np.int32)
    keep = (bins >= config.min_bin) & (bins < config.max_bin) & (frames >= 0)
    keys = np.unique(frames[keep].astype(np.int64) * _KEY_STRIDE + bins[keep])
    return landmark_pairs((keys // _KEY_STRIDE).astype(np.int32),
                          (keys % _KEY_STRIDE).astype(np.int32), config)


def _look_ahead(config: LandmarkConfig) -> int:
    """How many following peaks can fall in a target zone, given the per-block thinning."""
    block_frames, per_block = _block_shape(config.peaks_per_second, config)
    return per_block * (-(-config.max_dt // block_frames) + 1)


def hash_strength(
    fingerprint: Fingerprint,
    frames: NDArray[np.int32],
    bins: NDArray[np.int32],
    level: NDArray[np.float32],
) -> NDArray[np.float32]:
    """Per hash, the level (dB) of the weaker of its anchor and target peaks.

    Args:
        fingerprint: pairs made by ``landmark_pairs`` from the peaks ``frames``, ``bins``.
        frames, bins, level: the peaks, sorted by frame then bin, shape (n_peaks,).

    Returns:
        Shape (n_hashes,).
    """
    keys = frames.astype(np.int64) * _KEY_STRIDE + bins
    hashes = fingerprint.hashes
    anchor_bin = (hashes >> (FREQ_BITS + DT_BITS)) & _FREQ_MASK
    target_bin = (hashes >> DT_BITS) & _FREQ_MASK
    dt = hashes & _DT_MASK
    anchor_key = fingerprint.times.astype(np.int64) * _KEY_STRIDE + anchor_bin
    target_key = (fingerprint.times.astype(np.int64) + dt) * _KEY_STRIDE + target_bin
    anchor = level[np.searchsorted(keys, anchor_key)]
    target = level[np.searchsorted(keys, target_key)]
    out: NDArray[np.float32] = np.minimum(anchor, target).astype(np.float32)
    return out


def fingerprint(
    samples: NDArray[np.float32], config: LandmarkConfig = DEFAULT_CONFIG
) -> Fingerprint:
    """The landmarks of a mono float32 signal at ``hushtune.core.audio.SAMPLE_RATE`` (22,050
    Hz; resampled inside to ``config.sr``), with each hash's strength and the signal's length.

    Raises:
        ValueError: not a 1-D signal.
    """
    if samples.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (n_samples,), got {samples.shape}")
    frames, bins, level = spectral_peaks_db(samples, config)
    pairs = landmark_pairs(frames, bins, config)
    return dataclasses.replace(pairs, strength=hash_strength(pairs, frames, bins, level),
                               seconds=samples.size / SAMPLE_RATE)


def band_strength(fp: Fingerprint, config: LandmarkConfig = DEFAULT_CONFIG) -> NDArray[np.float32]:
    """Strengths with hashes that leave ``SHARED_BAND_HZ`` counted ``BAND_BONUS_DB`` weaker.

    Raises:
        ValueError: the fingerprint has no strengths (a decoded record).
    """
    if fp.strength is None:
        raise ValueError("this fingerprint has no strengths to rank by (a decoded record?)")
    hz_per_bin = config.sr / config.n_fft
    low, high = (round(hz / hz_per_bin) for hz in SHARED_BAND_HZ)
    inside = np.ones(fp.hashes.size, bool)
    for shift in (FREQ_BITS + DT_BITS, DT_BITS):
        bins = (fp.hashes >> shift) & _FREQ_MASK
        inside &= (bins >= low) & (bins <= high)
    out: NDArray[np.float32] = np.where(
        inside, fp.strength, fp.strength - BAND_BONUS_DB).astype(np.float32)
    return out


def thin_indices(
    times: NDArray[np.int32], strength: NDArray[np.float32], per_second: float | None,
    config: LandmarkConfig = DEFAULT_CONFIG,
) -> NDArray[np.intp]:
    """Indices (ascending) of the ``per_second`` strongest hashes of each one-second block of
    anchor frames; every index when ``per_second`` is None."""
    if per_second is None:
        return np.arange(times.size)
    return _strongest_per_block(times, strength, per_second, config)


def budget_indices(
    times: NDArray[np.int32], strength: NDArray[np.float32], max_hashes: int, seconds: float,
    config: LandmarkConfig = DEFAULT_CONFIG,
) -> NDArray[np.intp]:
    """Indices (ascending) of at most ``max_hashes`` hashes spread evenly over ``seconds``:
    ``thin_indices`` at the rate that fits, then the strongest of those when rounding per
    block keeps a few too many."""
    kept = thin_indices(times, strength, max_hashes / max(seconds, 1e-9), config)
    if kept.size > max_hashes:
        strongest = np.argsort(-strength[kept], kind="stable")[:max_hashes]
        kept = np.sort(kept[strongest])
    return kept


def subset(fp: Fingerprint, keep: NDArray[np.intp]) -> Fingerprint:
    """The hashes ``keep`` of ``fp`` (with their strengths), in the order given."""
    strength = None if fp.strength is None else fp.strength[keep]
    return Fingerprint(fp.hashes[keep], fp.times[keep], fp.n_peaks, strength, fp.seconds)


def skip_entries(times: NDArray[np.integer[Any]]) -> int:
    """Skip entries a record needs for hashes at ``times`` (anchor frames, sorted): a gap of g
    frames from the previous entry (the first from frame 0) takes (g - 1) // ``MAX_STEP``."""
    gaps = np.diff(times.astype(np.int64), prepend=0)
    return int((np.maximum(gaps - 1, 0) // MAX_STEP).sum())


def thin_record(
    fp: Fingerprint, record_bytes: int, config: LandmarkConfig = DEFAULT_CONFIG
) -> Fingerprint:
    """The hashes a record of ``record_bytes`` keeps: the first ``MAX_FRAMES`` frames, thinned
    evenly to the budget with the band bonus (module docstring), sorted by (frame, hash).

    The budget is ``record_bytes // ENTRY_BYTES`` entries. When the hashes and the skip
    entries their gaps need overflow it (a song with long silences), the print is re-thinned
    to that many fewer hashes, up to ``RETHIN_TRIES`` times, so the even spread is kept; if
    it still overflows, the weakest hashes are dropped until it fits.

    Raises:
        ValueError: no strengths (a decoded record), or a record too small for one entry.
    """
    max_entries = record_bytes // ENTRY_BYTES
    if max_entries < 1:
        raise ValueError(f"a record of {record_bytes} bytes holds no {ENTRY_BYTES}-byte entry")
    strength = band_strength(fp, config)
    seconds = fp.seconds if fp.seconds > 0 else (int(fp.times.max(initial=0)) + 1) / (
        config.frames_per_second)
    seconds = min(seconds, MAX_FRAMES / config.frames_per_second)
    early = np.flatnonzero(fp.times < MAX_FRAMES)

    def thin(max_hashes: int) -> NDArray[np.intp]:
        kept = early[budget_indices(fp.times[early], strength[early], max_hashes, seconds,
                                    config)]
        ordered: NDArray[np.intp] = kept[np.lexsort((fp.hashes[kept], fp.times[kept]))]
        return ordered

    max_hashes = max_entries
    kept = thin(max_hashes)
    for _ in range(RETHIN_TRIES):
        overflow = kept.size + skip_entries(fp.times[kept]) - max_entries
        if overflow <= 0:
            break
        max_hashes = max(max_hashes - overflow, 0)
        kept = thin(max_hashes)
    return subset(fp, kept[_fitting(fp.times[kept], strength[kept], max_entries)])


def _fitting(
    times: NDArray[np.int32], strength: NDArray[np.float32], max_entries: int
) -> NDArray[np.intp]:
    """Indices (ascending) of the hashes at ``times`` (sorted) left when the weakest are
    dropped until they and their skip entries fit ``max_entries``; all when they fit.

    Dropping a hash never adds entries (its two gaps merge into one that needs at most one
    more skip), so the fewest drops that fit are found by bisection."""
    weakest_first = np.argsort(strength, kind="stable")

    def fits(dropped: int) -> bool:
        keep = np.sort(weakest_first[dropped:])
        return keep.size + skip_entries(times[keep]) <= max_entries

    dropped = bisect.bisect_left(range(times.size + 1), True, key=fits)
    kept: NDArray[np.intp] = np.sort(weakest_first[dropped:])
    return kept


def pack_record(fp: Fingerprint, record_bytes: int) -> bytes:
    """``fp``'s hashes as record entries (module docstring), sorted by (frame, hash), with the
    skip entries their gaps need, zero-padded to exactly ``record_bytes``.

    Raises:
        ValueError: a hash is 0 or its frame outside 0 to ``MAX_FRAMES``, or the entries do
            not fit ``record_bytes``.
    """
    order = np.lexsort((fp.hashes, fp.times))
    hashes, times = fp.hashes[order], fp.times[order].astype(np.int64)
    if hashes.size and (hashes.min() == 0 or times[0] < 0 or times[-1] >= MAX_FRAMES):
        raise ValueError("record hashes must be non-zero at frames 0 to MAX_FRAMES - 1")
    gaps = np.diff(times, prepend=0)
    skips = np.maximum(gaps - 1, 0) // MAX_STEP
    at = np.arange(hashes.size) + np.cumsum(skips)
    entries = np.zeros((hashes.size + int(skips.sum()), ENTRY_BYTES), np.uint8)
    if entries.size > record_bytes:
        raise ValueError(f"{hashes.size} hashes and {int(skips.sum())} skip entries do not fit "
                         f"a record of {record_bytes} bytes")
    entries[:, 3] = MAX_STEP
    entries[at, :3] = hashes.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
    entries[at, 3] = gaps - skips * MAX_STEP
    data = entries.tobytes()
    return data + bytes(record_bytes - len(data))


def encode_record(
    fp: Fingerprint, record_bytes: int, config: LandmarkConfig = DEFAULT_CONFIG
) -> bytes:
    """A song's record: ``thin_record`` packed by ``pack_record`` (module docstring)."""
    return pack_record(thin_record(fp, record_bytes, config), record_bytes)


def decode_record(data: bytes) -> Fingerprint:
    """The hashes of a record (``encode_record``), sorted by (frame, hash). The first padding
    entry ends it, a hash-0 entry only advances the frame, and a trailing part shorter than
    an entry is ignored."""
    usable = len(data) - len(data) % ENTRY_BYTES
    entries = np.frombuffer(data[:usable], np.uint8).reshape(-1, ENTRY_BYTES).astype(np.uint32)
    hashes = entries[:, 0] | (entries[:, 1] << 8) | (entries[:, 2] << 16)
    padding = np.flatnonzero((hashes == 0) & (entries[:, 3] == 0))
    end = int(padding[0]) if padding.size else hashes.size
    times = np.cumsum(entries[:end, 3].astype(np.int64))
    real = hashes[:end] != 0
    return Fingerprint(hashes[:end][real].astype(np.uint32), times[real].astype(np.int32), 0)


def bag_bins(hashes: NDArray[np.uint32], bits: int) -> NDArray[np.int64]:
    """The distinct bins (of 2^bits, sorted) of ``hashes``: the top bits of a multiplicative
    hash, which spreads the 24-bit hashes' structured values evenly over the bins."""
    if not 1 <= bits <= 32:
        raise ValueError(f"bag bits {bits} must be 1 to 32")
    mixed = hashes.astype(np.uint64) * _GOLDEN
    return np.unique((mixed >> np.uint64(64 - bits)).astype(np.int64))


class RecordIndex:
    """Records indexed by hash, so one query is aligned against all of them at once."""

    def __init__(self, records: Sequence[Fingerprint]) -> None:
        hashes = np.concatenate([r.hashes for r in records] + [np.zeros(0, np.uint32)])
        songs = np.repeat(np.arange(len(records), dtype=np.int64),
                          [r.hashes.size for r in records])
        times = np.concatenate([r.times for r in records] + [np.zeros(0, np.int32)])
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._songs, self._times = hashes[order], songs[order], times[order]
        self.size = len(records)

    def aligned_counts(
        self, query: Fingerprint, speeds: Sequence[float] = (1.0,)
    ) -> NDArray[np.int64]:
        """Per record, the most query hashes that agree on one time offset (counted over that
        offset and the next frame, since the query starts anywhere inside a hop), the best
        over the query heard at each of ``speeds`` (``at_speed``); (records,)."""
        counts = [self._aligned(query if s == 1.0 else at_speed(query, s)) for s in speeds]
        if not counts:
            raise ValueError("no speed to align the query at")
        out: NDArray[np.int64] = np.max(counts, axis=0)
        return out

    def _aligned(self, query: Fingerprint) -> NDArray[np.int64]:
        counts_out = np.zeros(self.size, np.int64)
        lo = np.searchsorted(self._hashes, query.hashes, side="left")
        hi = np.searchsorted(self._hashes, query.hashes, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return counts_out
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        matches = starts + np.arange(total)
        offsets = self._times[matches].astype(np.int64) - np.repeat(query.times, counts)
        keys = (self._songs[matches] << 32) | (offsets + _OFFSET_BIAS)
        unique_keys, key_counts = np.unique(keys, return_counts=True)
        binned = key_counts.copy()
        adjacent = np.diff(unique_keys) == 1
        binned[:-1][adjacent] += key_counts[1:][adjacent]
        np.maximum.at(counts_out, unique_keys >> 32, binned)
        return counts_out


def aligned_count(query: Fingerprint, record: Fingerprint) -> int:
    """The largest number of query hashes agreeing on one time offset with ``record``."""
    return int(RecordIndex([record]).aligned_counts(query)[0])
