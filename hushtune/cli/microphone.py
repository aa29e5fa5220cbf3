"""Recording from the default microphone, with a clear message where there is none."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hushtune.core.errors import AudioError

RECORD_RATE = 22050


def record(seconds: float) -> tuple[NDArray[np.float32], int]:
    """Record ``seconds`` of mono audio; AudioError when no input device can be used."""
    if not 1.0 <= seconds <= 60.0:
        raise AudioError(f"--listen takes 1 to 60 seconds, got {seconds:g}")
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise AudioError(
            "recording needs the sounddevice package and PortAudio "
            "(pip install sounddevice; apt-get install libportaudio2)"
        ) from exc
    try:
        sounddevice.check_input_settings(channels=1, samplerate=RECORD_RATE)
        samples = sounddevice.rec(int(seconds * RECORD_RATE), samplerate=RECORD_RATE, channels=1)
        sounddevice.wait()
    except Exception as exc:  # PortAudio reports a missing device in several ways
        raise AudioError(f"no usable microphone: {exc}") from exc
    return np.asarray(samples, dtype=np.float32)[:, 0], RECORD_RATE
