"""A non-private reference: landmark fingerprinting after Wang (2003), "An Industrial-Strength
Audio Search Algorithm".

The pipeline, for catalog tracks and queries alike:

1. resample to ``LandmarkConfig.sr`` and take the magnitude STFT in decibels;
2. keep the spectral peaks: points that are the maximum of their time-frequency neighbourhood,
   above an absolute floor, thinned to the strongest few per second;
3. pair every peak (the anchor) with the first few peaks of a target zone just after it, and
   pack (anchor frequency, target frequency, time difference) into one integer hash, kept
   with the anchor's frame.

The index holds every catalog hash in one sorted array, with the song and anchor frame of
each. A query's hashes are looked up with ``searchsorted``; each match votes for the time
offset (catalog frame minus query frame) at which the query would sit in that song, and a
song's score is the number of matches in its most popular offset (counted over two adjacent
frames, since a query starts anywhere inside a hop). A true match lines many hashes up on one
offset; chance matches scatter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal

from hushtune.core.audio import SAMPLE_RATE

_FREQ_BITS = 9
_DT_BITS = 6
_OFFSET_BIAS = 1 << 31
"""Added to (catalog frame - query frame) so offsets pack into a non-negative key."""


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
    """Target zone start, in frames after the anchor."""
    max_dt: int = 63
    """Target zone end, in frames after the anchor; below 2**6."""
    max_df: int = 64
    """Target zone half height, in bins around the anchor's frequency."""
    min_query_seconds: float = 1.0
    """Shorter queries are refused: too few landmarks to align."""

    @property
    def frames_per_second(self) -> float:
        """STFT frames per second of signal."""
        return self.sr / self.hop_length


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """The landmarks of one signal: parallel arrays, one entry per anchor-target pair."""

    hashes: NDArray[np.uint32]
    """Packed (anchor bin, target bin, frame difference), shape (n_pairs,)."""
    times: NDArray[np.int32]
    """Frame of each pair's anchor, shape (n_pairs,)."""
    n_peaks: int
    """Spectral peaks the pairs were made from."""


def spectral_peaks(
    y: NDArray[np.float32], config: LandmarkConfig
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """The spectral peaks of ``y`` (mono, at ``SAMPLE_RATE``), sorted by frame then bin.

    Returns:
        (frames, bins), each of shape (n_peaks,).
    """
    frames, bins, _ = spectral_peaks_db(y, config)
    return frames, bins


def spectral_peaks_db(
    y: NDArray[np.float32], config: LandmarkConfig
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float32]]:
    """``spectral_peaks`` with the level of each peak, for thinning by strength.

    Returns:
        (frames, bins, level in dB re full scale of the STFT magnitude), each (n_peaks,).
    """
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
    keep = _strongest_per_block(frames, strength, config)
    order = np.lexsort((bins[keep], frames[keep]))
    return (
        frames[keep][order].astype(np.int32),
        (bins[keep][order] + config.min_bin).astype(np.int32),
        strength[keep][order].astype(np.float32),
    )


def _blocks(config: LandmarkConfig) -> tuple[int, int]:
    """(frames per thinning block of about one second, peaks kept per block)."""
    block_frames = max(1, round(config.frames_per_second))
    per_block = max(1, round(config.peaks_per_second * block_frames / config.frames_per_second))
    return block_frames, per_block


def _strongest_per_block(
    frames: NDArray[np.intp], strength: NDArray[np.float64], config: LandmarkConfig
) -> NDArray[np.intp]:
    """Indices of the ``peaks_per_second`` strongest peaks in each one-second block."""
    block_frames, per_block = _blocks(config)
    block = frames // block_frames
    order = np.lexsort((-strength, block))
    sorted_block = block[order]
    starts = np.searchsorted(sorted_block, sorted_block, side="left")
    rank = np.arange(order.size) - starts
    return np.sort(order[rank < per_block])


def landmark_pairs(
    frames: NDArray[np.int32], bins: NDArray[np.int32], config: LandmarkConfig
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
        (bins[anchor].astype(np.uint32) << (_FREQ_BITS + _DT_BITS))
        | (bins[target[anchor, column]].astype(np.uint32) << _DT_BITS)
        | dt[anchor, column].astype(np.uint32)
    )
    return Fingerprint(hashes, frames[anchor].astype(np.int32), int(n))


def _look_ahead(config: LandmarkConfig) -> int:
    """How many following peaks can fall in a target zone, given the per-block thinning."""
    block_frames, per_block = _blocks(config)
    return per_block * (-(-config.max_dt // block_frames) + 1)


def fingerprint(y: NDArray[np.float32], config: LandmarkConfig) -> Fingerprint:
    """The landmark hashes of a mono signal at ``SAMPLE_RATE``."""
    if y.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (n_samples,), got shape {y.shape}")
    frames, bins = spectral_peaks(y, config)
    return landmark_pairs(frames, bins, config)


class LandmarkBaseline:
    """Wang-style landmark fingerprinting: a non-private reference for the benchmark.

    Ranking scores are, per song, the number of query hashes that line up on the song's most
    popular time offset; the open-set confidence is the best song's count (the absolute number
    of aligned matches). Queries with no landmarks (silence) score zero everywhere.
    """

    name = "landmarks"
    threshold: float | None = None
    """No calibrated decision: a fixed count of aligned hashes (Wang 2003 used a handful)
    let through most unknown songs here; its open-set figure is the TPR at 1 % FPR."""

    def __init__(self, config: LandmarkConfig | None = None) -> None:
        """Args:
        config: tuning constants; the defaults suit 11025 Hz analysis of music.
        """
        self.config = config or LandmarkConfig()
        if SAMPLE_RATE % self.config.sr:
            raise ValueError(f"analysis rate {self.config.sr} must divide {SAMPLE_RATE}")
        if self.config.max_bin > 1 << _FREQ_BITS or self.config.max_dt >= 1 << _DT_BITS:
            raise ValueError("max_bin or max_dt too large for the hash layout")
        self._hashes = np.zeros(0, np.uint32)
        self._songs = np.zeros(0, np.int32)
        self._times = np.zeros(0, np.int32)
        self._n_songs = 0

    def track_features(self, y: NDArray[np.float32]) -> Fingerprint:
        """The landmarks of a catalog track."""
        return fingerprint(y, self.config)

    def query_features(self, y: NDArray[np.float32]) -> Fingerprint:
        """The landmarks of a query.

        Raises:
            ValueError: the query is shorter than ``config.min_query_seconds``.
        """
        if y.size < self.config.min_query_seconds * SAMPLE_RATE:
            raise ValueError(
                f"query is {y.size / SAMPLE_RATE:.3f} s long; landmark matching needs at "
                f"least {self.config.min_query_seconds:g} s"
            )
        return fingerprint(y, self.config)

    def fit(self, per_track: Sequence[object]) -> None:
        """Index the catalog's landmarks; catalog song ``i`` is ``per_track[i]``.

        Raises:
            ValueError: features not made by ``track_features``.
        """
        prints = [_as_fingerprint(f) for f in per_track]
        hashes = np.concatenate([p.hashes for p in prints] + [np.zeros(0, np.uint32)])
        songs = np.repeat(np.arange(len(prints), dtype=np.int32), [p.hashes.size for p in prints])
        times = np.concatenate([p.times for p in prints] + [np.zeros(0, np.int32)])
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._songs, self._times = hashes[order], songs[order], times[order]
        self._n_songs = len(prints)

    def score(self, query: object) -> tuple[NDArray[np.float64], float]:
        """Aligned-match counts per song, shape (n_songs,), and the best count."""
        query_print = _as_fingerprint(query)
        scores = np.zeros(self._n_songs, np.float64)
        lo = np.searchsorted(self._hashes, query_print.hashes, side="left")
        hi = np.searchsorted(self._hashes, query_print.hashes, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return scores, 0.0
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        matches = starts + np.arange(total)
        offsets = self._times[matches].astype(np.int64) - np.repeat(query_print.times, counts)
        keys = (self._songs[matches].astype(np.int64) << 32) | (offsets + _OFFSET_BIAS)
        unique_keys, key_counts = np.unique(keys, return_counts=True)
        binned = key_counts.copy()
        adjacent = np.diff(unique_keys) == 1
        binned[:-1][adjacent] += key_counts[1:][adjacent]
        np.maximum.at(scores, unique_keys >> 32, binned.astype(np.float64))
        return scores, float(scores.max())


def _as_fingerprint(features: object) -> Fingerprint:
    if not isinstance(features, Fingerprint):
        raise ValueError(
            f"expected a Fingerprint from LandmarkBaseline, got {type(features).__name__}"
        )
    return features
