"""A memory-bounded trainer for catalogs of many songs, and adding or removing songs later.

sklearn's full-batch LogisticRegression at 10,000 classes took 282 s and 5.6 GB here. This
trainer fits the same model (a softmax over standardized, pooled query vectors, with sklearn's
L2 penalty) by minibatch gradient descent in torch on the CPU, in float32. Training queries are
drawn fresh for every minibatch from the tracks' window features, exactly as
``training.sample_queries`` draws them (random runs of 5 to 19 consecutive windows, pooled), so
memory is the windows plus one batch of logits, not a table of a million rows.

Each track's windows are its clean copy first, then its degraded copies; a query comes from
the clean copy or a degraded one in the proportion ``TrainingConfig.clean_queries`` to
``queries_per_excerpt`` per copy, as ``training.track_queries`` draws them.

The result is a sklearn ``LogisticRegression`` with ``coef_``, ``intercept_`` and ``classes_``
filled in, inside a ``training.TrainedModel``: whatever compiles a sklearn model takes it.

Songs are added by training only the new rows, old rows frozen, on batches that mix queries of
the new songs with queries of old ones (the softmax still normalizes over every song), so the
old songs' scores do not move; removal drops rows. The open-set threshold is calibrated on
songs outside the catalog, by the same rule as ``training.calibrate_threshold``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from hushtune.core.hidden_layer import HiddenLayer, encode
from hushtune.core.ranking import open_set_score
from hushtune.services.featurizer.training import (
    TrainedModel,
    TrainingConfig,
    as_sklearn,
    threshold_for,
)

Progress = Callable[[int, int, str], None]

MIN_CALIBRATION_SONGS = 20
"""Fewest added songs whose scores recalibrate the threshold when songs are added."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamingConfig:
    """Knobs of the minibatch trainer; the penalty comes from ``TrainingConfig.regularization``."""

    batch_size: int = 2048
    queries_per_song: int = 400
    """Training queries drawn per song over the whole run (spread over its conditions)."""
    min_steps: int = 300
    """Fewest minibatch steps, whatever the number of songs (small catalogs need them)."""
    learning_rate: float = 0.05
    """Adam step size at the start; it decays linearly to a tenth."""
    new_row_penalty: float = 1.0
    """Scale of the L2 penalty on rows trained by ``add_songs`` (1: as in a full training)."""
    threads: int = 1
    """torch intra-op threads. More barely help at 10,000 songs (0.77 against 0.92 s a step
    here) and cost several times over at a few hundred songs when the cores are shared."""


class WindowBank:
    """Every window of every (track, copy) in one float32 array, for fast query sampling."""

    def __init__(
        self, per_track: Sequence[Sequence[NDArray[np.float32]]], config: TrainingConfig
    ) -> None:
        lengths = [w.shape[0] for conditions in per_track for w in conditions]
        if not lengths:
            raise ValueError("no tracks to train on")
        width = per_track[0][0].shape[1]
        self.data = np.empty((sum(lengths), width), dtype=np.float32)
        self.segment_track = np.repeat(
            np.arange(len(per_track)), [len(conditions) for conditions in per_track]
        )
        self.segment_start = np.zeros(len(lengths), dtype=np.int64)
        self.segment_length = np.asarray(lengths, dtype=np.int64)
        row = 0
        for k, windows in enumerate(w for conditions in per_track for w in conditions):
            self.segment_start[k] = row
            self.data[row : row + windows.shape[0]] = windows
            row += windows.shape[0]
        self.tracks = len(per_track)
        first = np.r_[0, np.cumsum([len(c) for c in per_track])[:-1]]
        self.track_first_segment = first.astype(np.int64)
        self.track_segments = np.asarray([len(c) for c in per_track], dtype=np.int64)
        degraded = (self.track_segments - 1) * config.queries_per_excerpt
        self.queries = config.clean_queries + degraded
        """Training queries ``training.track_queries`` would draw from each track."""
        self.clean_share = config.clean_queries / np.maximum(self.queries, 1)

    def scaler(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-feature mean and standard deviation over all windows (as ``fit_scaler``)."""
        total = np.zeros(self.data.shape[1])
        squares = np.zeros(self.data.shape[1])
        for start in range(0, self.data.shape[0], 65536):
            chunk = self.data[start : start + 65536].astype(np.float64)
            total += chunk.sum(axis=0)
            squares += np.square(chunk).sum(axis=0)
        mean = total / self.data.shape[0]
        variance = np.maximum(squares / self.data.shape[0] - mean**2, 0.0)
        return mean, np.maximum(np.sqrt(variance), 1e-6)

    def sample(
        self,
        tracks: NDArray[np.int64],
        config: TrainingConfig,
        rng: np.random.Generator,
    ) -> NDArray[np.float32]:
        """One raw (not yet standardized) pooled query per entry of ``tracks``.

        Each query picks the clean copy (with probability ``clean_share``) or one degraded
        copy, then a run of ``min_windows`` to ``max_windows`` consecutive windows, as
        ``sample_queries`` does.
        """
        degraded = self.track_segments[tracks] - 1
        copy = 1 + (rng.random(tracks.size) * degraded).astype(np.int64)
        clean = (rng.random(tracks.size) < self.clean_share[tracks]) | (degraded == 0)
        segment = self.track_first_segment[tracks] + np.where(clean, 0, copy)
        available = self.segment_length[segment]
        length = np.minimum(
            rng.integers(config.min_windows, config.max_windows + 1, size=tracks.size), available
        )
        start = self.segment_start[segment] + (
            rng.random(tracks.size) * (available - length + 1)
        ).astype(np.int64)
        offsets = np.arange(config.max_windows)
        mask = offsets[None, :] < length[:, None]
        rows = np.where(mask, start[:, None] + offsets[None, :], start[:, None])
        pooled = (self.data[rows] * mask[:, :, None]).sum(axis=1) / length[:, None]
        result: NDArray[np.float32] = pooled.astype(np.float32)
        return result


def _penalty_weight(rows: int, config: TrainingConfig) -> float:
    """Per-row weight of 0.5 * ||W||^2 that makes the mean loss match sklearn's objective.

    sklearn minimizes 0.5 * ||W||^2 + C * sum of row losses over n rows; dividing by C * n
    gives the mean row loss plus 0.5 * ||W||^2 / (C * n). ``rows`` is the size of the
    training set ``training.training_set`` would draw.
    """
    return 1.0 / (config.regularization * max(rows, 1))


def _fit_rows(
    bank: WindowBank,
    mean: NDArray[np.float64],
    scale: NDArray[np.float64],
    frozen: tuple[NDArray[np.float32], NDArray[np.float32]] | None,
    new_tracks: NDArray[np.int64],
    config: TrainingConfig,
    stream: StreamingConfig,
    rng: np.random.Generator,
    progress: Progress | None,
    hidden: HiddenLayer | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Fit rows for ``new_tracks`` (bank track ids) with ``frozen`` rows (of the other tracks,
    in bank order before them) held fixed; returns the new rows' (W, b). With ``hidden``, the
    rows read the (frozen) client-side layer's outputs instead of the standardized queries.

    Labels: frozen rows are classes 0..F-1 (bank tracks 0..F-1), new tracks F.. in order.
    """
    import torch

    torch.manual_seed(int(rng.integers(2**31)))
    torch.set_num_threads(stream.threads)
    n_frozen = 0 if frozen is None else frozen[0].shape[0]
    n_new = new_tracks.size
    width = bank.data.shape[1] if hidden is None else hidden.units
    layer = None if hidden is None else (torch.from_numpy(hidden.weights.astype(np.float32)),
                                         torch.from_numpy(hidden.bias.astype(np.float32)))
    weight = torch.zeros((n_new, width), requires_grad=True)
    bias = torch.zeros(n_new, requires_grad=True)
    frozen_w = None if frozen is None else torch.from_numpy(frozen[0])
    frozen_b = None if frozen is None else torch.from_numpy(frozen[1])
    optimizer = torch.optim.Adam([weight, bias], lr=stream.learning_rate)
    steps = max(stream.min_steps, int(np.ceil(n_new * stream.queries_per_song / stream.batch_size)))
    if frozen is not None:
        steps *= 2  # half of every batch are queries of old songs
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, total_iters=steps)
    penalty = _penalty_weight(int(bank.queries.sum()), config)
    row_penalty = 1.0 if frozen is None else stream.new_row_penalty
    mean32 = torch.from_numpy(mean.astype(np.float32))
    scale32 = torch.from_numpy(scale.astype(np.float32))
    # Batches of an add hold as many old-song as new-song queries; weighting each query by
    # (its song's share of the catalog) / (its share of the batch) trains the new rows as if
    # queries came from all songs alike, so the few new songs do not learn an inflated prior.
    n_total = n_frozen + n_new
    prior_weight = torch.tensor([2.0 * n_frozen / n_total, 2.0 * n_new / n_total])
    for step in range(steps):
        if frozen is None:
            labels = rng.integers(0, n_new, size=stream.batch_size)
            tracks = new_tracks[labels]
        else:
            half = stream.batch_size // 2
            labels = np.concatenate(
                [rng.integers(0, n_frozen, size=half), n_frozen + rng.integers(0, n_new, size=half)]
            )
            new = new_tracks[np.maximum(labels - n_frozen, 0)]
            tracks = np.where(labels < n_frozen, labels, new)
        x = (torch.from_numpy(bank.sample(tracks, config, rng)) - mean32) / scale32
        if layer is not None:
            x = torch.relu(x @ layer[0] + layer[1])
        logits = x @ weight.T + bias
        if frozen_w is not None and frozen_b is not None:
            logits = torch.cat([x @ frozen_w.T + frozen_b, logits], dim=1)
        target = torch.from_numpy(labels)
        if frozen is None:
            loss = torch.nn.functional.cross_entropy(logits, target)
        else:
            each = torch.nn.functional.cross_entropy(logits, target, reduction="none")
            loss = (each * prior_weight[(target >= n_frozen).long()]).mean()
        loss = loss + 0.5 * penalty * row_penalty * (weight**2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        schedule.step()
        if progress and (step % 50 == 0 or step == steps - 1):
            progress(step + 1, steps, f"loss {float(loss):.3f}")
    return weight.detach().numpy().copy(), bias.detach().numpy().copy()


def calibrate_threshold(
    classifier: LogisticRegression,
    unknown: Sequence[Sequence[NDArray[np.float32]]],
    mean: NDArray[np.float64],
    scale: NDArray[np.float64],
    config: TrainingConfig,
    rng: np.random.Generator,
    hidden: HiddenLayer | None = None,
) -> float:
    """Open-set threshold from songs outside the catalog (``unknown``: their windows).

    Same rule as ``training.calibrate_threshold`` (``training.threshold_for``). Songs outside
    the catalog replace its held-out folds, which would cost four more trainings.
    """
    if len(unknown) < 4:
        return 8.0
    bank = WindowBank(unknown, config)
    per_song = []
    for track in range(bank.tracks):
        tracks = np.full(int(bank.queries[track]), track, dtype=np.int64)
        queries = (bank.sample(tracks, config, rng).astype(np.float64) - mean) / scale
        per_song.append(open_set_score(classifier.decision_function(encode(queries, hidden))))
    return threshold_for(per_song, config.target_false_positive_rate)


def train_streaming(
    per_track: Sequence[Sequence[NDArray[np.float32]]],
    unknown: Sequence[Sequence[NDArray[np.float32]]],
    config: TrainingConfig,
    stream: StreamingConfig | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """Fit scaler and softmax on all songs by minibatches; calibrate on ``unknown`` songs.

    Args:
        per_track: windows of each catalog song (clean, then each noise condition).
        unknown: windows of songs not in the catalog, for the open-set threshold.

    Returns:
        A TrainedModel whose classifier is a sklearn LogisticRegression; its
        ``calibration_inputs`` are 2,000 training queries for FHE quantizer calibration.
    """
    stream = stream or StreamingConfig()
    rng = np.random.default_rng(config.seed)
    bank = WindowBank(per_track, config)
    mean, scale = bank.scaler()
    tracks = np.arange(bank.tracks, dtype=np.int64)
    weight, bias = _fit_rows(bank, mean, scale, None, tracks, config, stream, rng, progress)
    classifier = as_sklearn(weight, bias, config)
    threshold = calibrate_threshold(classifier, unknown, mean, scale, config, rng)
    sample = rng.integers(0, bank.tracks, size=2000)
    inputs = (bank.sample(sample, config, rng).astype(np.float64) - mean) / scale
    return TrainedModel(classifier, mean, scale, threshold, calibration_inputs=inputs)


def add_songs(
    model: TrainedModel,
    old_tracks: Sequence[Sequence[NDArray[np.float32]]],
    new_tracks: Sequence[Sequence[NDArray[np.float32]]],
    unknown: Sequence[Sequence[NDArray[np.float32]]] | None,
    config: TrainingConfig,
    stream: StreamingConfig | None = None,
    progress: Progress | None = None,
    *,
    min_calibration_songs: int = MIN_CALIBRATION_SONGS,
) -> TrainedModel:
    """The model with rows for ``new_tracks`` appended; old rows and the scaler unchanged.

    Args:
        old_tracks: windows of every song already in the model, in class order (they are
            the negatives the new rows are trained against).
        new_tracks: windows of the songs to add; they become classes n_old, n_old + 1, ...
        unknown: songs outside the catalog, to calibrate the threshold afresh. None: the
            songs being added are those, measured under the model before they join it, when
            there are at least ``min_calibration_songs`` of them; else the threshold is kept.
    """
    stream = stream or StreamingConfig()
    n_old = model.classifier.coef_.shape[0]
    if len(old_tracks) != n_old:
        raise ValueError(f"model has {n_old} songs but {len(old_tracks)} old tracks were given")
    if not new_tracks:
        raise ValueError("no songs to add")
    rng = np.random.default_rng(config.seed + n_old)
    threshold = model.threshold
    if unknown is None and len(new_tracks) >= min_calibration_songs:
        threshold = calibrate_threshold(model.classifier, new_tracks, model.feature_mean,
                                        model.feature_scale, config, rng, model.hidden)
    bank = WindowBank([*old_tracks, *new_tracks], config)
    classifier = model.classifier
    frozen = (classifier.coef_.astype(np.float32), classifier.intercept_.astype(np.float32))
    new_ids = np.arange(n_old, bank.tracks, dtype=np.int64)
    weight, bias = _fit_rows(bank, model.feature_mean, model.feature_scale, frozen, new_ids,
                             config, stream, rng, progress, model.hidden)
    classifier = as_sklearn(np.vstack([frozen[0], weight]), np.concatenate([frozen[1], bias]),
                            config)
    if unknown is not None:
        threshold = calibrate_threshold(classifier, unknown, model.feature_mean,
                                        model.feature_scale, config, rng, model.hidden)
    return dataclasses.replace(model, classifier=classifier, threshold=threshold)


def train_streaming_calibrated(
    per_track: Sequence[Sequence[NDArray[np.float32]]],
    config: TrainingConfig,
    stream: StreamingConfig | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """``train_streaming`` with the threshold measured on catalog songs the model had not seen.

    A catalog build has no songs outside the catalog to calibrate on. So a held-out share of
    its songs (``calibration_songs``) is left out of training, then added as ``add_songs`` adds
    songs, which measures the threshold on them as unknown songs first: one training plus one
    small add, where held-out folds would cost a training each. Classes keep the order of
    ``per_track``; the quantizer calibration queries are the first training's.
    """
    n = len(per_track)
    held = calibration_songs(n)
    if held == 0:
        model = train_streaming(per_track, [], config, stream, progress)
        return dataclasses.replace(model, threshold=8.0)
    order = np.random.default_rng(config.seed).permutation(n)
    kept, held_out = np.sort(order[held:]), np.sort(order[:held])
    kept_tracks, held_tracks = [per_track[i] for i in kept], [per_track[i] for i in held_out]
    first = train_streaming(kept_tracks, [], config, stream, progress)
    model = add_songs(first, kept_tracks, held_tracks, None, config, stream, progress,
                      min_calibration_songs=1)
    position = np.argsort(np.concatenate([kept, held_out]))  # class of track i in ``model``
    classifier = as_sklearn(model.classifier.coef_[position].astype(np.float32),
                            model.classifier.intercept_[position].astype(np.float32), config)
    return dataclasses.replace(model, classifier=classifier)


def calibration_songs(n_songs: int) -> int:
    """Songs ``train_streaming_calibrated`` holds out: a tenth, 4 to 200; none below 8 songs."""
    if n_songs < 8:
        return 0
    return max(4, min(200, n_songs // 10))


def remove_songs(model: TrainedModel, classes: Sequence[int]) -> TrainedModel:
    """The model without the rows of ``classes``; the others keep their order and weights.

    The threshold is kept (``calibrate_threshold`` can refresh it): the median logit it is
    measured against barely moves when a few rows of thousands go.
    """
    n = model.classifier.coef_.shape[0]
    drop = set(classes)
    if any(not 0 <= c < n for c in drop):
        raise ValueError(f"classes to remove must be in 0..{n - 1}")
    keep = np.asarray([c for c in range(n) if c not in drop], dtype=np.int64)
    if keep.size < 2:
        raise ValueError("a catalog needs at least 2 songs left")
    coef, intercept = model.classifier.coef_[keep], model.classifier.intercept_[keep]
    classifier = as_sklearn(coef.astype(np.float32), intercept.astype(np.float32),
                            TrainingConfig(regularization=model.classifier.C))
    return dataclasses.replace(model, classifier=classifier)
