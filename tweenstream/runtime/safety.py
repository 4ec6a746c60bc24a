"""Explosion detection and recovery (TWEENING.md, "Explosions").

After every step the interpreter calls ``check_step``: hard triggers (non-finite parameters, a
parameter-norm jump; non-finite gaps where the step computed them) and, on the steps that
computed the gaps (``diagnostics_every``), the soft trigger (fast EMA of the mean gap above
``explosion_limit`` x the slow EMA, after warm-up). A trigger calls ``explode``: roll back to the
shadow copy if parameters changed, reset the optimiser state (momentum, Adam's moments,
AdaGrad's sums, the partial batch), back the adaptive rate off, record the event.
A clean step lets the rate climb back and refreshes the shadow every ``snapshot_every`` steps.

Storms (the same shadow copy rolled back to again and again) end: each further rollback to one
copy holds down the ceiling the rate climbs back to, and while it is held the copy is refreshed
sooner.
"""

import numpy as np

from tweenstream.runtime.layout import (
    D_GAP,
    D_NORM2,
    EVENT_RING,
    F_BACKOFF,
    F_BACKOFF5,
    F_BACKOFF10,
    F_EXPLOSION_LIMIT,
    F_FAST_ALPHA,
    F_MAX_JUMP,
    F_NORM_GROWTH,
    F_RATE_FLOOR,
    F_RECOVERY,
    F_SLOW_ALPHA,
    I_SNAPSHOT_EVERY,
    I_SOFT_DETECT,
    I_STREAK_RESET,
    I_WARMUP,
    N_CLEAN_EVENT,
    N_CLEAN_SNAP,
    N_DIAG_AT,
    N_EMA_STARTED,
    N_EVENT_HEAD,
    N_EVENTS,
    N_EXPLOSIONS,
    N_HOLD,
    N_MOST_SNAP_ROLLBACKS,
    N_ROLLBACKS,
    N_SEEN,
    N_SINCE_ROLLBACK,
    N_SNAP_ROLLBACKS,
    N_STORMS,
    N_STREAK,
    P_PARAM,
    P_SHADOW,
    R_GAP,
    R_JUMP,
    R_PARAMS,
    S_FAST,
    S_LOSS,
    S_NORM2,
    S_RATE,
    S_SHADOW_LOSS,
    S_SHADOW_NORM2,
    S_SLOW,
    STORM_AT,
)
from tweenstream.runtime.numba_config import inline, kernel
from tweenstream.runtime.unmanaged import copy_into
from tweenstream.runtime.update import layer_norms, reset_optimizer


@kernel
def explode(table, pbuf, diag, cfg, fst, ist, reason, dirty):
    """Handle one explosion event; ``dirty`` says the parameters changed since the last check."""
    if dirty:
        copy_into(pbuf[P_PARAM], pbuf[P_SHADOW])
        layer_norms(table, pbuf, diag)
        ist[N_ROLLBACKS] += 1
        ist[N_SINCE_ROLLBACK] = 0
        if ist[N_SNAP_ROLLBACKS] > 0:  # back to this copy again: hold the rate down
            hold(cfg, fst, ist, 1)
        ist[N_SNAP_ROLLBACKS] += 1
        if ist[N_SNAP_ROLLBACKS] == STORM_AT:
            ist[N_STORMS] += 1
        ist[N_MOST_SNAP_ROLLBACKS] = max(ist[N_MOST_SNAP_ROLLBACKS], ist[N_SNAP_ROLLBACKS])
    reset_optimizer(pbuf, ist)
    ist[N_EXPLOSIONS] += 1
    ist[N_STREAK] += 1
    ist[N_CLEAN_EVENT] = 0
    ist[N_CLEAN_SNAP] = 0
    factor = cfg[F_BACKOFF]
    if ist[N_STREAK] > 10:
        factor = cfg[F_BACKOFF10]
    elif ist[N_STREAK] > 5:
        factor = cfg[F_BACKOFF5]
    fst[S_RATE] = max(cfg[F_RATE_FLOOR], min(fst[S_RATE] * factor, ceiling(cfg, ist)))
    if fst[S_SLOW] == fst[S_SLOW]:
        fst[S_FAST] = fst[S_SLOW]
    head = ist[N_EVENT_HEAD]
    ist[N_EVENTS + 2 * head] = ist[N_SEEN] - 1
    ist[N_EVENTS + 2 * head + 1] = reason
    ist[N_EVENT_HEAD] = (head + 1) % EVENT_RING


@inline
def ceiling(cfg, ist):
    """The rate's ceiling: 2^-n while held down n notches (1 when n = 0), never below
    ``rate_floor``."""
    return max(cfg[F_RATE_FLOOR], 0.5 ** ist[N_HOLD])


@inline
def hold(cfg, fst, ist, notches):
    """Move the rate's ceiling ``notches`` down (up, if negative), n >= 0; the rate itself
    never above it."""
    ist[N_HOLD] = max(ist[N_HOLD] + notches, 0)
    fst[S_RATE] = min(fst[S_RATE], ceiling(cfg, ist))


@kernel
def new_phase(pbuf, fst, ist):
    """The guard starts afresh when the learning rule changes (a hybrid switch, set_phase): the
    optimiser state is dropped, the adaptive rate and its ceiling return to 1 (the old rule's
    back-offs say nothing about the new rule's steps), the streak and storm count are forgotten,
    and the shadow copy becomes the current parameters, so that a rollback returns to where the
    new rule started rather than to weights of the old one."""
    reset_optimizer(pbuf, ist)
    fst[S_RATE] = 1.0
    ist[N_HOLD] = 0
    ist[N_STREAK] = 0
    ist[N_SNAP_ROLLBACKS] = 0
    ist[N_CLEAN_SNAP] = 0
    copy_into(pbuf[P_SHADOW], pbuf[P_PARAM])
    fst[S_SHADOW_NORM2] = fst[S_NORM2]
    fst[S_SHADOW_LOSS] = np.inf  # the new rule's loss is not comparable with the old one's


@inline
def clean_step(pbuf, cfg, icfg, fst, ist, norm2, checked):
    """Bookkeeping of a step that passed every check. The shadow copy is refreshed only after
    a step that ``checked`` the gaps too (the soft trigger ran), so that a rollback never
    returns to weights the soft trigger has not seen. While the rate's ceiling is held down n
    notches and the running loss is no worse than when the copy was taken, the copy is
    refreshed after ``snapshot_every`` / 2^n clean steps; each refresh raises the ceiling one
    notch, so a deep hold is released within ``snapshot_every`` clean steps of learning that
    does as well as before. A model whose loss got worse keeps its copy for the full period."""
    fst[S_NORM2] = norm2
    fst[S_RATE] = min(ceiling(cfg, ist), fst[S_RATE] * cfg[F_RECOVERY])
    ist[N_CLEAN_SNAP] += 1
    due = icfg[I_SNAPSHOT_EVERY]
    if ist[N_HOLD] > 0 and fst[S_LOSS] <= fst[S_SHADOW_LOSS]:
        due = max(due >> min(ist[N_HOLD], 62), 1)
    if checked and ist[N_CLEAN_SNAP] >= due:
        copy_into(pbuf[P_SHADOW], pbuf[P_PARAM])
        fst[S_SHADOW_NORM2] = norm2
        fst[S_SHADOW_LOSS] = fst[S_LOSS]
        ist[N_CLEAN_SNAP] = 0
        if ist[N_HOLD] > 0:
            hold(cfg, fst, ist, -1)
        ist[N_SNAP_ROLLBACKS] = 0
    ist[N_CLEAN_EVENT] += 1
    if ist[N_CLEAN_EVENT] >= icfg[I_STREAK_RESET]:
        ist[N_STREAK] = 0
    ist[N_SINCE_ROLLBACK] += 1


@kernel
def check_step(table, pbuf, diag, cfg, icfg, fst, ist, diagnose):
    """Run the triggers after a parameter update; roll back or record a clean step.

    The hard triggers run on every step. With ``diagnose`` (this step computed the gaps), the
    gaps are checked too and the soft trigger's EMAs take this measurement. Returns the reason
    code of the event, or 0 for a clean step.
    """
    L = table.shape[0]
    gap = 0.0
    norm2 = 0.0
    for i in range(L):
        norm2 += diag[D_NORM2, i]
    if diagnose:
        for i in range(L):
            gap += diag[D_GAP, i]
        gap /= L
    reason = 0
    if not (np.isfinite(gap) and np.isfinite(norm2)):
        reason = R_PARAMS
    elif fst[S_NORM2] > 0.0 and norm2 > cfg[F_MAX_JUMP] * cfg[F_MAX_JUMP] * fst[S_NORM2]:
        reason = R_JUMP
    elif diagnose:
        if ist[N_EMA_STARTED] == 0:  # the first clean check, not the first sample
            fst[S_FAST] = gap
            fst[S_SLOW] = gap
            ist[N_EMA_STARTED] = 1
        else:
            # the windows count measurements, not samples: an EMA of every k-th gap with the
            # per-sample weight would rest on k times fewer values and raise false alarms
            # (measured: 88 on an LSTM stream that has none when every gap is measured)
            fst[S_FAST] += cfg[F_FAST_ALPHA] * (gap - fst[S_FAST])
            # winsorised: a burst cannot raise the baseline it is judged against
            capped = min(gap, cfg[F_EXPLOSION_LIMIT] * fst[S_SLOW])
            fst[S_SLOW] += cfg[F_SLOW_ALPHA] * (capped - fst[S_SLOW])
        growth = cfg[F_NORM_GROWTH]
        if (icfg[I_SOFT_DETECT] != 0 and ist[N_SEEN] > icfg[I_WARMUP]
                and fst[S_FAST] > cfg[F_EXPLOSION_LIMIT] * fst[S_SLOW]
                and norm2 > growth * growth * fst[S_SHADOW_NORM2]):
            reason = R_GAP
    if diagnose:
        ist[N_DIAG_AT] = ist[N_SEEN]
    if reason != 0:  # (reason != 0) is a typed bool: a literal True would compile explode again
        explode(table, pbuf, diag, cfg, fst, ist, reason, reason != 0)
    else:
        clean_step(pbuf, cfg, icfg, fst, ist, norm2, diagnose)
    return reason
