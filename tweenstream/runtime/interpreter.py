"""The compiled interpreter: walks the plan rows and dispatches on op code.

Every function takes the same flat arrays (see ``layout.py``). The per-kind dispatchers
(``forward_layer`` and the others) are generated into ``dispatch.py``; the functions marked
``@per_kinds`` below call them, and ``engine.py`` compiles those once per set of layer kinds, so
a network compiles (or loads from the on-disk cache) only the kernels of the kinds it uses. The
``@kernel`` functions do not depend on the kinds and are compiled once for all.

One learning step (``step``): copy the input, forward (recording activations), score the
prediction (test-then-train), backward signal, per-layer targets/gaps/budgets and update, then
the explosion checks and the hybrid schedule. Backprop with Adam or AdaGrad accumulates like
batch mode, and ``update.apply_adaptive`` steps the whole vector when the batch is full.
``learn_many`` loops over samples inside compiled code, so Python crosses into Numba once per
call.
"""

import numpy as np

from tweenstream.runtime.dense import dense_block
from tweenstream.runtime.dispatch import forward_layer, project_layer, signal_layer, update_layer
from tweenstream.runtime.drift import plateau_update
from tweenstream.runtime.layout import (
    C_NOUT,
    C_OUT,
    D_BARRIER,
    D_BUDGET,
    D_GAP,
    D_NORM2,
    F_BETA1,
    F_BETA2,
    F_BIAS_MULT,
    F_BP_MOMENTUM,
    F_COSINE,
    F_DELTA_CLIP,
    F_EPSILON,
    F_GRAD_CLIP,
    F_GRADIENT_SCALE,
    F_IGNORE,
    F_LR,
    F_METRIC_ALPHA,
    F_PLATEAU_GAIN,
    F_TWEEN_MOMENTUM,
    F_TWEEN_RATE,
    F_WEIGHT_MULT,
    I_BATCH,
    I_CHAIN_GATE,
    I_COSINE_STEP,
    I_DIAG_EVERY,
    I_LOCAL_DERIV,
    I_MODE,
    I_OPTIMIZER,
    I_PLATEAU_PATIENCE,
    I_PLATEAU_WINDOW,
    I_SWITCH_AFTER,
    I_TASK,
    LT_DEPTH,
    LT_HI,
    LT_LO,
    LT_TYPE_RATE,
    M_BACKPROP,
    M_HEURISTIC,
    M_HYBRID,
    M_TWEEN,
    N_BATCH_FILL,
    N_OPT_STEP,
    N_PHASE,
    N_REJECTED,
    N_SEEN,
    N_SWITCHED_AT,
    N_UPDATES,
    N_WIN_BAD,
    N_WIN_FILL,
    O_SGD,
    P_ACC,
    R_INPUT,
    R_OUTPUT,
    S_LAST_LOSS,
    S_LOSS,
    S_LOSS_SUM,
    S_METRIC,
    S_METRIC_SUM,
    S_RATE,
    S_WIN_BEST,
    S_WIN_SUM,
    T_CLASSIFICATION,
    W_ACT,
    W_DELTA,
    W_DZ,
    W_SEEN,
    W_TGT,
)
from tweenstream.runtime.numba_config import inline, kernel, per_kinds, per_kinds_inline
from tweenstream.runtime.safety import check_step, explode, new_phase
from tweenstream.runtime.targets import (
    chain_targets,
    gap_and_budget,
    local_error,
    settle_targets,
)
from tweenstream.runtime.unmanaged import unmanaged_f32, unmanaged_f64, unmanaged_i64
from tweenstream.runtime.update import apply_accumulated, apply_adaptive

_F32 = np.float32


# --- the network head: loss, prequential score, output signal ---------------------------------
@inline
def softmax(z, p):
    """p = softmax(z) in float32, as the exported graph's Softmax computes it; returns
    (log-sum-exp of z, index of the largest z)."""
    m = z[0]
    best = 0
    for k in range(1, z.shape[0]):
        if z[k] > m:
            m = z[k]
            best = k
    total = _F32(0.0)
    for k in range(z.shape[0]):
        e = np.exp(z[k] - m)
        p[k] = e
        total += e
    for k in range(z.shape[0]):
        p[k] = p[k] / total
    return np.log(np.float64(total)) + m, best


@inline
def head(table, work, task, c, y, mix, step):
    """Softmax-CE, or for regression squared error mixed with cosine loss (``mix``: the cosine
    part's weight, 0 for none) at the output; returns (loss, score, correct).

    The regression loss is (1 - mix) * 0.5 * |y - a|^2 + mix * mean_s (1 - cos(a_s, y_s)),
    on the targets the model learns (standardised, if it standardises them), where s runs over
    the groups of ``step`` consecutive outputs (a sequence output's steps) or, for ``step`` 0,
    is the whole output.

    Writes probabilities (or outputs) into the head slot at the end of ``work[W_ACT]`` and
    g = -dloss/d(output) into ``work[W_DELTA]`` at the output slot. ``score`` is what the hybrid
    plateau trigger watches: 1/0 correctness, or minus the loss for regression.
    """
    L = table.shape[0]
    oo, K = table[L - 1, C_OUT], table[L - 1, C_NOUT]
    A = work[W_ACT]
    G = work[W_DELTA]
    hd = work.shape[1] - K
    if task == T_CLASSIFICATION:
        lse, _ = softmax(A[oo:oo + K], A[hd:hd + K])
        # the prediction is the best unit among classes learned before this sample, as
        # Learner.predict_one answers; then this sample's class counts as learned
        seen = work[W_SEEN]
        best = -1
        for k in range(K):
            G[oo + k] = (_F32(1.0) if k == c else _F32(0.0)) - A[hd + k]
            if seen[hd + k] > _F32(0.0) and (best < 0 or A[oo + k] > A[oo + best]):
                best = k
        seen[hd + c] = _F32(1.0)
        loss = lse - A[oo + c]
        correct = 1.0 if best == c else 0.0
        return loss, correct, correct
    loss = 0.0
    err = 0.0
    # y: the targets, or (a model that standardises its targets) 4 blocks of K: the scaled
    # targets it learns, the targets, and the std and mean that scaled them: the error is
    # then reported in the targets' units (runtime/scaling.py, scale_targets)
    scaled = y.shape[0] >= 4 * K
    for k in range(K):
        a = A[oo + k]
        A[hd + k] = a
        d = y[k] - a
        G[oo + k] = _F32((1.0 - mix) * np.float64(d)) if mix > 0.0 else d
        loss += (1.0 - mix) * 0.5 * np.float64(d) * d
        if scaled:
            err += abs(np.float64(y[K + k]) - (np.float64(a) * y[2 * K + k] + y[3 * K + k]))
        else:
            err += abs(np.float64(d))
    if mix > 0.0:  # add -d/da of the cosine part, group by group
        width = step if step > 0 else K
        groups = K // width
        for s0 in range(0, K, width):
            na = 0.0
            ny = 0.0
            dot = 0.0
            for k in range(s0, s0 + width):
                a64 = np.float64(A[oo + k])
                y64 = np.float64(y[k])
                na += a64 * a64
                ny += y64 * y64
                dot += a64 * y64
            na = max(np.sqrt(na), 1e-8)
            ny = max(np.sqrt(ny), 1e-8)
            cos = dot / (na * ny)
            loss += mix * (1.0 - cos) / groups
            for k in range(s0, s0 + width):
                g_cos = np.float64(y[k]) / (na * ny) - cos * np.float64(A[oo + k]) / (na * na)
                G[oo + k] = _F32(np.float64(G[oo + k]) + mix * g_cos / groups)
    return loss, -loss, err / K


# --- the two sweeps -----------------------------------------------------------------------------
@per_kinds_inline
def chain_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst, phase, accumulate, diagnose):
    """Backward sweep for backprop and chain-rule tween: targets, gaps, signal, update.

    Backprop learns from the signal alone: it computes targets, gaps and link budgets only
    when ``diagnose``; tween needs the targets, and their gaps and budgets when ``diagnose``.
    """
    L = table.shape[0]
    s = _F32(cfg[F_GRADIENT_SCALE])
    rate = fst[S_RATE]
    gate = phase == M_TWEEN and icfg[I_CHAIN_GATE] != 0
    if phase == M_BACKPROP:
        lim = _F32(cfg[F_GRAD_CLIP])
        va, vb, vc = _F32(cfg[F_BP_MOMENTUM]), _F32(1.0), _F32(cfg[F_LR] * rate)
    else:
        m = cfg[F_TWEEN_MOMENTUM]
        lim = _F32(cfg[F_DELTA_CLIP])
        va, vb, vc = _F32(m), _F32(1.0 - m), _F32(1.0)
    targets = phase == M_TWEEN or diagnose
    for i in range(L - 1, -1, -1):
        row = table[i]
        budget = 0.5
        if targets:
            gap, budget = chain_targets(row, work, s, _F32(ltab[i, LT_LO]),
                                        _F32(ltab[i, LT_HI]), diagnose)
            if diagnose:
                diag[D_GAP, i] = gap
                diag[D_BUDGET, i] = budget
        signal_layer(row, pbuf, work, i > 0)
        coef = 1.0
        if phase == M_TWEEN:
            local_error(row, work, True)
            coef = cfg[F_TWEEN_RATE] * ltab[i, LT_TYPE_RATE] * ltab[i, LT_DEPTH] * rate
            if gate:
                if budget < cfg[F_IGNORE]:
                    continue
                coef *= 0.5 * (1.0 + budget)
        n2 = update_layer(row, pbuf, work, _F32(coef), _F32(coef), lim, va, vb, vc, accumulate)
        if not accumulate:
            diag[D_NORM2, i] = n2


@per_kinds_inline
def heuristic_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst, c, y, accumulate):
    """Derivative-free tween: targets top-down from the weights, then forward-and-update.

    Each layer is updated as soon as its output exists; the next layer sees its pre-update
    output. Returns (loss, score, metric), with a NaN loss if the output was not finite.
    """
    L = table.shape[0]
    task = icfg[I_TASK]
    oo, K = table[L - 1, C_OUT], table[L - 1, C_NOUT]
    T = work[W_TGT]
    for k in range(K):
        if task == T_CLASSIFICATION:
            T[oo + k] = _F32(1.0) if k == c else _F32(0.0)
        else:
            T[oo + k] = y[k]
    for i in range(L - 1, 0, -1):
        project_layer(table[i], pbuf, work, _F32(ltab[i - 1, LT_LO]), _F32(ltab[i - 1, LT_HI]))
    use_deriv = icfg[I_LOCAL_DERIV] != 0
    rate = fst[S_RATE]
    m = cfg[F_TWEEN_MOMENTUM]
    lim = _F32(cfg[F_DELTA_CLIP])
    va, vb = _F32(m), _F32(1.0 - m)
    loss, score, metric = 0.0, 0.0, 0.0
    for i in range(L):
        row = table[i]
        forward_layer(row, pbuf, work)
        if i == L - 1:
            loss, score, metric = head(table, work, task, c, y, cfg[F_COSINE], icfg[I_COSINE_STEP])
            if not np.isfinite(loss):
                return loss, score, metric
            if task == T_CLASSIFICATION:  # compare probabilities with the one-hot target
                hd = work.shape[1] - K
                gap, budget = gap_and_budget(work[W_ACT, hd:hd + K], T[oo:oo + K])
                G = work[W_DELTA]
                E = work[W_DZ]
                for k in range(K):
                    E[oo + k] = G[oo + k]
            else:
                gap, budget = settle_targets(row, work)
                local_error(row, work, use_deriv)
        else:
            gap, budget = settle_targets(row, work)
            local_error(row, work, use_deriv)
        diag[D_GAP, i] = gap
        diag[D_BUDGET, i] = budget
        if budget < cfg[F_IGNORE]:
            continue
        coef = (cfg[F_TWEEN_RATE] * ltab[i, LT_TYPE_RATE] * ltab[i, LT_DEPTH] * rate
                * 0.5 * (1.0 + budget))
        n2 = update_layer(row, pbuf, work, _F32(coef * cfg[F_WEIGHT_MULT]),
                          _F32(coef * cfg[F_BIAS_MULT]), lim, va, vb, _F32(1.0), accumulate)
        if not accumulate:
            diag[D_NORM2, i] = n2
    return loss, score, metric


# --- one sample -------------------------------------------------------------------------------
@per_kinds_inline
def forward(table, pbuf, work, x):
    """Copy x into the input slot and run every layer; returns False if x is not finite."""
    A = work[W_ACT]
    ok = True
    for j in range(x.shape[0]):
        A[j] = x[j]
        if not np.isfinite(x[j]):
            ok = False
    if ok:
        for i in range(table.shape[0]):
            forward_layer(table[i], pbuf, work)
    return ok


@per_kinds_inline
def step(table, ltab, pbuf, work, diag, cfg, icfg, fst, ist, x, c, y):
    """Test-then-train on one sample: score the prediction, then learn from it."""
    ist[N_SEEN] += 1
    phase = ist[N_PHASE]
    task = icfg[I_TASK]
    # adam and adagrad step the whole vector at once (apply_adaptive): the kinds accumulate
    adaptive = phase == M_BACKPROP and icfg[I_OPTIMIZER] != O_SGD
    accumulate = icfg[I_BATCH] > 1 or adaptive
    # one call of explode, with typed (not literal) arguments: each distinct literal argument
    # would compile explode once more
    bad = 0
    dirty = False
    loss, score, metric = 0.0, 0.0, 0.0
    # gaps, budgets and the soft trigger: every sample where the mode learns from them,
    # otherwise on every I_DIAG_EVERY-th (the first sample included)
    every = icfg[I_DIAG_EVERY]
    diagnose = (phase == M_HEURISTIC or (phase == M_TWEEN and icfg[I_CHAIN_GATE] != 0)
                or every <= 1 or (ist[N_SEEN] - 1) % every == 0)
    if phase == M_HEURISTIC:
        A = work[W_ACT]
        finite = True
        for j in range(x.shape[0]):
            A[j] = x[j]
            if not np.isfinite(x[j]):
                finite = False
        if not finite:
            bad = R_INPUT
        else:
            loss, score, metric = heuristic_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst,
                                                  c, y, accumulate)
            if not np.isfinite(loss):
                bad = R_OUTPUT
                # the sweep updated the layers below the output, unless it only accumulated
                dirty = table.shape[0] > 1 and not accumulate
    elif not forward(table, pbuf, work, x):
        bad = R_INPUT
    else:
        loss, score, metric = head(table, work, task, c, y, cfg[F_COSINE], icfg[I_COSINE_STEP])
        if not np.isfinite(loss):
            bad = R_OUTPUT
        else:
            chain_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst, phase, accumulate,
                        diagnose)
    if bad != 0:
        ist[N_REJECTED] += 1
        explode(table, pbuf, diag, cfg, fst, ist, bad, dirty)
        return
    record_metrics(cfg, fst, ist, loss, metric)
    if accumulate:
        ist[N_BATCH_FILL] += 1
        if ist[N_BATCH_FILL] >= icfg[I_BATCH]:
            if adaptive:
                ist[N_OPT_STEP] += 1
                apply_adaptive(table, pbuf, diag, ist[N_BATCH_FILL], icfg[I_OPTIMIZER],
                               cfg[F_LR] * fst[S_RATE], cfg[F_BETA1], cfg[F_BETA2],
                               cfg[F_EPSILON], ist[N_OPT_STEP])
            else:
                if phase == M_BACKPROP:
                    va, vb, vc = cfg[F_BP_MOMENTUM], 1.0, cfg[F_LR] * fst[S_RATE]
                else:
                    va, vb, vc = cfg[F_TWEEN_MOMENTUM], 1.0 - cfg[F_TWEEN_MOMENTUM], 1.0
                apply_accumulated(table, pbuf, diag, ist[N_BATCH_FILL], _F32(va), _F32(vb),
                                  _F32(vc))
            ist[N_BATCH_FILL] = 0
            ist[N_UPDATES] += 1
    else:
        ist[N_UPDATES] += 1
    if check_step(table, pbuf, diag, cfg, icfg, fst, ist, diagnose) == 0 and diagnose:
        depth_barrier(diag)
    if icfg[I_MODE] == M_HYBRID and phase == M_TWEEN and ist[N_SWITCHED_AT] < 0:
        hybrid_schedule(pbuf, cfg, icfg, fst, ist, score)


@inline
def depth_barrier(diag):
    """Running product of link budgets from the input side, for diagnostics."""
    prod = 1.0
    for i in range(diag.shape[1]):
        prod *= diag[D_BUDGET, i]
        diag[D_BARRIER, i] = prod


@inline
def record_metrics(cfg, fst, ist, loss, metric):
    """Prequential (test-then-train) running loss and metric."""
    alpha = cfg[F_METRIC_ALPHA]
    if ist[N_SEEN] - ist[N_REJECTED] <= 1:
        fst[S_LOSS] = loss
        fst[S_METRIC] = metric
    else:
        fst[S_LOSS] += alpha * (loss - fst[S_LOSS])
        fst[S_METRIC] += alpha * (metric - fst[S_METRIC])
    fst[S_LAST_LOSS] = loss
    fst[S_LOSS_SUM] += loss
    fst[S_METRIC_SUM] += metric


@inline
def hybrid_schedule(pbuf, cfg, icfg, fst, ist, score):
    """Switch a hybrid run from tween to backprop after N samples or on a plateau."""
    switch = icfg[I_SWITCH_AFTER] > 0 and ist[N_SEEN] >= icfg[I_SWITCH_AFTER]
    window = icfg[I_PLATEAU_WINDOW]
    if window > 0 and plateau_update(fst[S_WIN_SUM:S_WIN_BEST + 1], ist[N_WIN_FILL:N_WIN_BAD + 1],
                                     score, 1, window, cfg[F_PLATEAU_GAIN],
                                     icfg[I_PLATEAU_PATIENCE]):
        switch = True
    if switch:
        ist[N_PHASE] = M_BACKPROP
        ist[N_SWITCHED_AT] = ist[N_SEEN]
        new_phase(pbuf, fst, ist)


# --- entry points (one Python -> Numba crossing per call) -------------------------------------
@inline
def first_bad_row(X, Yc, n_classes, check_labels):
    """Index of the first row with a non-finite value or an out-of-range label, or -1."""
    for s in range(X.shape[0]):
        for j in range(X.shape[1]):
            if not np.isfinite(X[s, j]):
                return s
        if check_labels and (Yc[s] < 0 or Yc[s] >= n_classes):
            return s
    return -1


@per_kinds
def learn_many(table, ltab, pbuf, work, diag, cfg, icfg, fst, ist, X, Yc, Yr, validate):
    """Learn from every row of X in order. With ``validate`` nothing is learned unless every
    row is finite and every label in range; returns the first bad row, or -1.

    X (n, n_in) float32; Yc (n,) int64 class labels; Yr (n, n_out) float32 regression targets
    (an unused (1, 1) placeholder for the other task). Mutates pbuf, work, diag, fst, ist.
    """
    table, ltab, pbuf = unmanaged_i64(table), unmanaged_f64(ltab), unmanaged_f32(pbuf)
    work, diag, cfg = unmanaged_f32(work), unmanaged_f64(diag), unmanaged_f64(cfg)
    icfg, fst, ist = unmanaged_i64(icfg), unmanaged_f64(fst), unmanaged_i64(ist)
    X, Yc, Yr = unmanaged_f32(X), unmanaged_i64(Yc), unmanaged_f32(Yr)
    n = X.shape[0]
    cls = icfg[I_TASK] == T_CLASSIFICATION
    if validate:
        n_classes = table[table.shape[0] - 1, C_NOUT]
        bad = first_bad_row(X, Yc, n_classes, cls)
        if bad >= 0:
            return bad
        if not cls:  # the same argument types: one compilation of first_bad_row
            bad = first_bad_row(Yr, Yc, n_classes, cls)
            if bad >= 0:
                return bad
    c = np.int64(-1)  # one call site, one type: a literal -1 would compile step a second time
    for s in range(n):
        if cls:
            c = Yc[s]
        step(table, ltab, pbuf, work, diag, cfg, icfg, fst, ist, X[s], c, Yr[s if not cls else 0])
    return -1


@per_kinds
def predict_many(table, pbuf, work, task, X, out):
    """Forward every row of X; probabilities (classification) or outputs go to ``out`` (n, K).

    Rows that are not finite get NaN outputs. Returns the number of rows with a NaN output
    (the caller needs no pass of its own over ``out``). Mutates only ``work`` and ``out``.
    """
    table, pbuf, work = unmanaged_i64(table), unmanaged_f32(pbuf), unmanaged_f32(work)
    X, out = unmanaged_f32(X), unmanaged_f32(out)
    L = table.shape[0]
    oo, K = table[L - 1, C_OUT], table[L - 1, C_NOUT]
    A = work[W_ACT]
    for s in range(X.shape[0]):
        if not forward(table, pbuf, work, X[s]):
            for k in range(K):
                out[s, k] = np.nan
        elif task == T_CLASSIFICATION:
            softmax(A[oo:oo + K], out[s])
        else:
            for k in range(K):
                out[s, k] = A[oo + k]
    return nan_rows(out)


@inline
def nan_rows(out):
    """The number of rows of ``out`` (n, K) holding a NaN."""
    bad = 0
    for s in range(out.shape[0]):
        for k in range(out.shape[1]):
            if out[s, k] != out[s, k]:
                bad += 1
                break
    return bad



@kernel
def dense_predict_many(table, pbuf, task, X, out, blk):
    """``predict_many`` for a network of Dense layers only, up to ``dense.BLOCK`` rows at a
    time through each layer (``dense.dense_block``): the same outputs as the row-by-row forward
    up to the order of float32 sums. ``blk`` (2, BLOCK * widest layer) is scratch. Returns
    the number of rows with a NaN output, as ``predict_many``.
    """
    table, pbuf = unmanaged_i64(table), unmanaged_f32(pbuf)
    X, out, blk = unmanaged_f32(X), unmanaged_f32(out), unmanaged_f32(blk)
    L = table.shape[0]
    K = table[L - 1, C_NOUT]
    n, d = X.shape[0], X.shape[1]
    B = blk.shape[1] // max(d, 1)
    for i in range(L):
        B = min(B, blk.shape[1] // table[i, C_NOUT])
    B = B // 4 * 4  # dense_block pads a block to a multiple of 4 rows
    for start in range(0, n, B):
        nb = min(B, n - start)
        src = blk[0]
        for r in range(nb):
            src[r * d:(r + 1) * d] = X[start + r]
        for i in range(L):
            dense_block(table[i], pbuf, blk[i % 2], blk[(i + 1) % 2], nb)
        res = blk[L % 2]
        for r in range(nb):
            s = start + r
            finite = True
            for j in range(d):
                if not np.isfinite(X[s, j]):
                    finite = False
            if not finite:  # as forward: a row that is not finite gets NaN
                for k in range(K):
                    out[s, k] = np.nan
            elif task == T_CLASSIFICATION:
                softmax(res[r * K:(r + 1) * K], out[s])
            else:
                out[s, :] = res[r * K:(r + 1) * K]
    return nan_rows(out)


@per_kinds
def accumulate_gradients(table, ltab, pbuf, work, diag, cfg, icfg, fst, X, Yc, Yr, rows):
    """Add the backprop descent direction of each listed row of X to ``pbuf[P_ACC]``.

    No parameter changes. One thread's share of a minibatch: each thread has its own pbuf,
    work, diag and fst, and the caller sums the threads' P_ACC rows (no shared writes).
    Returns the sum of the rows' losses. ``rows`` (m,) int64 indexes X, Yc / Yr.
    """
    table, ltab, pbuf = unmanaged_i64(table), unmanaged_f64(ltab), unmanaged_f32(pbuf)
    work, diag, cfg = unmanaged_f32(work), unmanaged_f64(diag), unmanaged_f64(cfg)
    icfg, fst = unmanaged_i64(icfg), unmanaged_f64(fst)
    X, Yc, Yr, rows = unmanaged_f32(X), unmanaged_i64(Yc), unmanaged_f32(Yr), unmanaged_i64(rows)
    pbuf[P_ACC, :] = _F32(0.0)
    cls = icfg[I_TASK] == T_CLASSIFICATION
    total = 0.0
    c = np.int64(-1)
    for r in rows:
        if cls:
            c = Yc[r]
        y = Yr[r if not cls else 0]
        forward(table, pbuf, work, X[r])
        loss, _, _ = head(table, work, icfg[I_TASK], c, y, cfg[F_COSINE], icfg[I_COSINE_STEP])
        total += loss
        chain_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst, M_BACKPROP, True, False)
    return total
