"""What a daemon keeps in a checkpoint besides the model, and the checks on it.

The counters go into the manifest (small JSON); the stream table and the inputs waiting for
labels go in as arrays (``streams_to_arrays``, ``DelayedLabels.to_arrays``), so the manifest
stays small however many streams there are. ``check_budget`` refuses settings whose fullest
checkpoint would exceed the byte budget; ``check_state`` lets ``CheckpointStore.latest`` skip a
checkpoint whose daemon state does not parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tweenstream.stream.checkpoint import Checkpoint
from tweenstream.stream.labels import DelayedLabels
from tweenstream.stream.streams import (
    WINDOW,
    StreamStats,
    streams_from_arrays,
    streams_to_arrays,
)

if TYPE_CHECKING:
    from tweenstream.runtime.learner import Learner
    from tweenstream.stream.settings import ServeConfig

STATE_VERSION = 2


def state_parts(counters: Mapping[str, int], rejected: Mapping[str, int], served: float,
                streams: dict[str, StreamStats], labels: DelayedLabels
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The daemon's state as (manifest extra, arrays) for ``CheckpointStore.write``.

    Examples
    --------
    >>> extra, arrays = state_parts({"samples": 3}, {}, 1.5, {}, DelayedLabels(2, 4, 60.0))
    >>> extra["version"], sorted(arrays)[:2]
    (2, ['label_X', 'label_ages'])
    """
    extra = {"version": STATE_VERSION, "counters": dict(counters), "rejected": dict(rejected),
             "served_s": served}
    return extra, {**streams_to_arrays(streams, served), **labels.to_arrays()}


def parse_state(found: Checkpoint, labels: DelayedLabels) -> tuple[dict[str, StreamStats],
                                                                     float]:
    """Streams (and the label store, filled in place) from a checkpoint; ``ValueError`` if
    they are inconsistent. Version-1 checkpoints kept streams as JSON."""
    extra = found.extra
    served = float(extra.get("served_s", 0.0))
    if not np.isfinite(served) or served < 0:
        raise ValueError(f"served_s {served} out of range")
    if extra.get("version", 1) == 1:
        streams = {k: StreamStats.from_dict(v) for k, v in extra.get("streams", {}).items()}
        for stats in streams.values():
            stats.active_at = served
            stats.durable = stats.seq.applied_through()
        return streams, served
    streams = streams_from_arrays(found.arrays, served)
    labels.restore(found.arrays)
    return streams, served


def check_state(found: Checkpoint) -> None:
    """``CheckpointStore.latest``'s check: the daemon state must parse."""
    if found.learner is None:
        return
    n = len(found.arrays.get("label_is_str", ()))
    parse_state(found, DelayedLabels(max(n, 1), found.learner.network.n_inputs, 1.0))


def check_budget(learner: Learner, config: ServeConfig, label_capacity: int) -> None:
    """Refuse settings whose fullest checkpoint would not fit the byte budget."""
    per_stream = config.limits.max_name * 4 + 8 * 8 + 5 * 8 + WINDOW // 8 + 8
    per_label = learner.network.n_inputs * 4 + 1 + 8 + config.limits.max_name * 4 + 8
    worst = learner._saved_nbytes_max() \
        + config.max_streams * per_stream + label_capacity * per_label
    if worst > config.checkpoint_budget:
        raise ValueError(f"a checkpoint with {config.max_streams} streams and "
                         f"{label_capacity} waiting labels can reach {worst} bytes, over "
                         f"checkpoint_budget {config.checkpoint_budget}; raise the budget or "
                         "lower max_streams / label_capacity")
