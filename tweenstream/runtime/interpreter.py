"""The compiled interpreter: walks the plan rows and dispatches on op code.

Every function takes the same flat arrays (see ``layout.py``), so one compilation serves every
network. Adding a layer kind adds one branch to each ``*_layer`` dispatcher below.

One learning step (``step``): copy the input, forward (recording activations), score the
prediction (test-then-train), backward signal, per-layer targets/gaps/budgets and update, then
the explosion checks and the hybrid schedule. ``learn_many`` loops over samples inside compiled
code, so Python crosses into Numba once per call.
"""

import numpy as np

from tweenstream.models.attention import ATTENTION
from tweenstream.models.conv import AVG_POOL, CONV1D, CONV2D, MAX_POOL
from tweenstream.models.dense import DENSE
from tweenstream.models.embedding import EMBEDDING
from tweenstream.models.flatten import FLATTEN
from tweenstream.models.lstm import LSTM_KIND
from tweenstream.models.norm import LAYER_NORM, RMS_NORM
from tweenstream.models.residual import RESIDUAL_BEGIN, RESIDUAL_END
from tweenstream.models.rnn import RNN_KIND
from tweenstream.models.swiglu import SWIGLU
from tweenstream.runtime.attention import (
    attention_forward,
    attention_project_target,
    attention_signal,
    attention_update,
)
from tweenstream.runtime.conv import (
    conv_forward,
    conv_project_target,
    conv_signal,
    conv_update,
    pool_forward,
    pool_signal,
)
from tweenstream.runtime.dense import (
    dense_forward,
    dense_project_target,
    dense_signal,
    dense_update,
)
from tweenstream.runtime.embedding import embedding_forward, embedding_signal, embedding_update
from tweenstream.runtime.flatten import flatten_forward, flatten_signal
from tweenstream.runtime.layout import (
    C_HEUR,
    C_NOUT,
    C_OUT,
    D_BARRIER,
    D_BUDGET,
    D_GAP,
    D_NORM2,
    F_BIAS_MULT,
    F_BP_MOMENTUM,
    F_DELTA_CLIP,
    F_GRAD_CLIP,
    F_GRADIENT_SCALE,
    F_IGNORE,
    F_LR,
    F_METRIC_ALPHA,
    F_PLATEAU_GAIN,
    F_TWEEN_MOMENTUM,
    F_TWEEN_RATE,
    F_WEIGHT_MULT,
    H_KEEP,
    H_PASS,
    I_BATCH,
    I_CHAIN_GATE,
    I_LOCAL_DERIV,
    I_MODE,
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
    N_PHASE,
    N_REJECTED,
    N_SEEN,
    N_SWITCHED_AT,
    N_UPDATES,
    N_WIN_BAD,
    N_WIN_FILL,
    P_ACC,
    P_VEL,
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
    W_TGT,
)
from tweenstream.runtime.lstm import lstm_forward, lstm_project_target, lstm_signal, lstm_update
from tweenstream.runtime.norm import norm_forward, norm_signal, norm_update
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.residual import begin_forward, begin_signal, end_forward, end_signal
from tweenstream.runtime.rnn import rnn_forward, rnn_project_target, rnn_signal, rnn_update
from tweenstream.runtime.safety import check_step, explode
from tweenstream.runtime.swiglu import (
    swiglu_forward,
    swiglu_project_target,
    swiglu_signal,
    swiglu_update,
)
from tweenstream.runtime.targets import (
    chain_targets,
    gap_and_budget,
    keep_target,
    local_error,
    pass_target,
    settle_targets,
)
from tweenstream.runtime.unmanaged import unmanaged_f32, unmanaged_f64, unmanaged_i64
from tweenstream.runtime.update import apply_accumulated

OP_DENSE = DENSE.op_code
OP_LAYER_NORM = LAYER_NORM.op_code
OP_RMS_NORM = RMS_NORM.op_code
OP_FLATTEN = FLATTEN.op_code
OP_RNN = RNN_KIND.op_code
OP_LSTM = LSTM_KIND.op_code
OP_CONV2D = CONV2D.op_code
OP_CONV1D = CONV1D.op_code
OP_MAX_POOL = MAX_POOL.op_code
OP_AVG_POOL = AVG_POOL.op_code
OP_EMBEDDING = EMBEDDING.op_code
OP_SWIGLU = SWIGLU.op_code
OP_ATTENTION = ATTENTION.op_code
OP_RESIDUAL_BEGIN = RESIDUAL_BEGIN.op_code
OP_RESIDUAL_END = RESIDUAL_END.op_code
_F32 = np.float32


# --- per-kind dispatch ------------------------------------------------------------------------
@kernel
def forward_layer(row, pbuf, work):
    """Forward one layer (activations and pre-activations of the current sample)."""
    op = row[0]
    if op == OP_DENSE:
        dense_forward(row, pbuf, work)
    elif op == OP_LAYER_NORM or op == OP_RMS_NORM:
        norm_forward(row, pbuf, work)
    elif op == OP_FLATTEN:
        flatten_forward(row, pbuf, work)
    elif op == OP_RNN:
        rnn_forward(row, pbuf, work)
    elif op == OP_LSTM:
        lstm_forward(row, pbuf, work)
    elif op == OP_CONV2D or op == OP_CONV1D:
        conv_forward(row, pbuf, work)
    elif op == OP_MAX_POOL or op == OP_AVG_POOL:
        pool_forward(row, pbuf, work)
    elif op == OP_EMBEDDING:
        embedding_forward(row, pbuf, work)
    elif op == OP_SWIGLU:
        swiglu_forward(row, pbuf, work)
    elif op == OP_ATTENTION:
        attention_forward(row, pbuf, work)
    elif op == OP_RESIDUAL_BEGIN:
        begin_forward(row, pbuf, work)
    elif op == OP_RESIDUAL_END:
        end_forward(row, pbuf, work)


@kernel
def signal_layer(row, pbuf, work, need_input):
    """Exact backward signal through one layer (writes g of its input when ``need_input``)."""
    op = row[0]
    if op == OP_DENSE:
        dense_signal(row, pbuf, work, need_input)
    elif op == OP_LAYER_NORM or op == OP_RMS_NORM:
        norm_signal(row, pbuf, work, need_input)
    elif op == OP_FLATTEN:
        flatten_signal(row, pbuf, work, need_input)
    elif op == OP_RNN:
        rnn_signal(row, pbuf, work, need_input)
    elif op == OP_LSTM:
        lstm_signal(row, pbuf, work, need_input)
    elif op == OP_CONV2D or op == OP_CONV1D:
        conv_signal(row, pbuf, work, need_input)
    elif op == OP_MAX_POOL or op == OP_AVG_POOL:
        pool_signal(row, pbuf, work, need_input)
    elif op == OP_EMBEDDING:
        embedding_signal(row, pbuf, work, need_input)
    elif op == OP_SWIGLU:
        swiglu_signal(row, pbuf, work, need_input)
    elif op == OP_ATTENTION:
        attention_signal(row, pbuf, work, need_input)
    elif op == OP_RESIDUAL_BEGIN:
        begin_signal(row, pbuf, work, need_input)
    elif op == OP_RESIDUAL_END:
        end_signal(row, pbuf, work, need_input)


@kernel
def project_layer(row, pbuf, work, lo, hi):
    """Heuristic target of one layer's input: projected, passed through, or kept (C_HEUR)."""
    rule = row[C_HEUR]
    if rule == H_PASS:
        pass_target(row, work, lo, hi)
    elif rule == H_KEEP:
        keep_target(row, work)
    elif row[0] == OP_DENSE:
        dense_project_target(row, pbuf, work, lo, hi)
    elif row[0] == OP_RNN:
        rnn_project_target(row, pbuf, work, lo, hi)
    elif row[0] == OP_LSTM:
        lstm_project_target(row, pbuf, work, lo, hi)
    elif row[0] == OP_CONV2D or row[0] == OP_CONV1D:
        conv_project_target(row, pbuf, work, lo, hi)
    elif row[0] == OP_SWIGLU:
        swiglu_project_target(row, pbuf, work, lo, hi)
    elif row[0] == OP_ATTENTION:
        attention_project_target(row, pbuf, work, lo, hi)


@kernel
def update_layer(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Update one layer's parameters from its local error; returns their new sum of squares."""
    op = row[0]
    if op == OP_DENSE:
        return dense_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate)
    if op == OP_LAYER_NORM or op == OP_RMS_NORM:
        return norm_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate)
    if op == OP_RNN:
        return rnn_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate)
    if op == OP_LSTM:
        return lstm_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate)
    if op == OP_CONV2D or op == OP_CONV1D:
        return conv_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate)
    if op == OP_EMBEDDING:
        return embedding_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate)
    if op == OP_SWIGLU:
        return swiglu_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate)
    if op == OP_ATTENTION:
        return attention_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate)
    return 0.0


# --- the network head: loss, prequential score, output signal ---------------------------------
@kernel
def head(table, work, task, c, y):
    """Softmax-CE or squared error at the output; returns (loss, score, correct).

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
        m = A[oo]
        best = 0
        for k in range(1, K):
            if A[oo + k] > m:
                m = A[oo + k]
                best = k
        total = 0.0
        for k in range(K):
            e = np.exp(np.float64(A[oo + k] - m))
            A[hd + k] = e
            total += e
        for k in range(K):
            p = A[hd + k] / total
            A[hd + k] = p
            G[oo + k] = (_F32(1.0) if k == c else _F32(0.0)) - p
        loss = np.log(total) + m - A[oo + c]
        correct = 1.0 if best == c else 0.0
        return loss, correct, correct
    loss = 0.0
    err = 0.0
    for k in range(K):
        a = A[oo + k]
        A[hd + k] = a
        d = y[k] - a
        G[oo + k] = d
        loss += 0.5 * np.float64(d) * d
        err += abs(np.float64(d))
    return loss, -loss, err / K


# --- the two sweeps -----------------------------------------------------------------------------
@kernel
def chain_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst, phase, accumulate):
    """Backward sweep for backprop and chain-rule tween: targets, gaps, signal, update."""
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
    for i in range(L - 1, -1, -1):
        row = table[i]
        gap, budget = chain_targets(row, work, s, _F32(ltab[i, LT_LO]), _F32(ltab[i, LT_HI]))
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


@kernel
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
            loss, score, metric = head(table, work, task, c, y)
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
@kernel
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


@kernel
def step(table, ltab, pbuf, work, diag, cfg, icfg, fst, ist, x, c, y):
    """Test-then-train on one sample: score the prediction, then learn from it."""
    ist[N_SEEN] += 1
    phase = ist[N_PHASE]
    task = icfg[I_TASK]
    accumulate = icfg[I_BATCH] > 1
    if phase == M_HEURISTIC:
        A = work[W_ACT]
        finite = True
        for j in range(x.shape[0]):
            A[j] = x[j]
            if not np.isfinite(x[j]):
                finite = False
        if not finite:
            ist[N_REJECTED] += 1
            explode(table, pbuf, diag, cfg, fst, ist, R_INPUT, False)
            return
        loss, score, metric = heuristic_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst,
                                              c, y, accumulate)
        if not np.isfinite(loss):
            ist[N_REJECTED] += 1
            # the sweep updated the layers below the output, unless it only accumulated
            explode(table, pbuf, diag, cfg, fst, ist, R_OUTPUT,
                    table.shape[0] > 1 and not accumulate)
            return
    else:
        if not forward(table, pbuf, work, x):
            ist[N_REJECTED] += 1
            explode(table, pbuf, diag, cfg, fst, ist, R_INPUT, False)
            return
        loss, score, metric = head(table, work, task, c, y)
        if not np.isfinite(loss):
            ist[N_REJECTED] += 1
            explode(table, pbuf, diag, cfg, fst, ist, R_OUTPUT, False)
            return
        chain_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst, phase, accumulate)
    record_metrics(cfg, fst, ist, loss, metric)
    if accumulate:
        ist[N_BATCH_FILL] += 1
        if ist[N_BATCH_FILL] >= icfg[I_BATCH]:
            if phase == M_BACKPROP:
                va, vb, vc = cfg[F_BP_MOMENTUM], 1.0, cfg[F_LR] * fst[S_RATE]
            else:
                va, vb, vc = cfg[F_TWEEN_MOMENTUM], 1.0 - cfg[F_TWEEN_MOMENTUM], 1.0
            apply_accumulated(table, pbuf, diag, ist[N_BATCH_FILL], _F32(va), _F32(vb), _F32(vc))
            ist[N_BATCH_FILL] = 0
            ist[N_UPDATES] += 1
    else:
        ist[N_UPDATES] += 1
    if check_step(table, pbuf, diag, cfg, icfg, fst, ist) == 0:
        depth_barrier(diag)
    if icfg[I_MODE] == M_HYBRID and phase == M_TWEEN and ist[N_SWITCHED_AT] < 0:
        hybrid_schedule(pbuf, cfg, icfg, fst, ist, score)


@kernel
def depth_barrier(diag):
    """Running product of link budgets from the input side, for diagnostics."""
    prod = 1.0
    for i in range(diag.shape[1]):
        prod *= diag[D_BUDGET, i]
        diag[D_BARRIER, i] = prod


@kernel
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


@kernel
def hybrid_schedule(pbuf, cfg, icfg, fst, ist, score):
    """Switch a hybrid run from tween to backprop after N samples or on a plateau."""
    switch = icfg[I_SWITCH_AFTER] > 0 and ist[N_SEEN] >= icfg[I_SWITCH_AFTER]
    window = icfg[I_PLATEAU_WINDOW]
    if window > 0:
        fst[S_WIN_SUM] += score
        ist[N_WIN_FILL] += 1
        if ist[N_WIN_FILL] >= window:
            mean = fst[S_WIN_SUM] / window
            if mean > fst[S_WIN_BEST] + cfg[F_PLATEAU_GAIN]:
                fst[S_WIN_BEST] = mean
                ist[N_WIN_BAD] = 0
            else:
                ist[N_WIN_BAD] += 1
            fst[S_WIN_SUM] = 0.0
            ist[N_WIN_FILL] = 0
            if ist[N_WIN_BAD] >= icfg[I_PLATEAU_PATIENCE]:
                switch = True
    if switch:
        ist[N_PHASE] = M_BACKPROP
        ist[N_SWITCHED_AT] = ist[N_SEEN]
        pbuf[P_VEL, :] = _F32(0.0)
        pbuf[P_ACC, :] = _F32(0.0)
        ist[N_BATCH_FILL] = 0


# --- entry points (one Python -> Numba crossing per call) -------------------------------------
@kernel
def first_bad_row(X, Yc, n_classes, check_labels):
    """Index of the first row with a non-finite value or an out-of-range label, or -1."""
    for s in range(X.shape[0]):
        for j in range(X.shape[1]):
            if not np.isfinite(X[s, j]):
                return s
        if check_labels and (Yc[s] < 0 or Yc[s] >= n_classes):
            return s
    return -1


@kernel
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
        bad = first_bad_row(X, Yc, table[table.shape[0] - 1, C_NOUT], cls)
        if bad >= 0:
            return bad
        if not cls:
            bad = first_bad_row(Yr, Yc, 0, False)
            if bad >= 0:
                return bad
    for s in range(n):
        if cls:
            step(table, ltab, pbuf, work, diag, cfg, icfg, fst, ist, X[s], Yc[s], Yr[0])
        else:
            step(table, ltab, pbuf, work, diag, cfg, icfg, fst, ist, X[s], -1, Yr[s])
    return -1


@kernel
def predict_many(table, pbuf, work, task, X, out):
    """Forward every row of X; probabilities (classification) or outputs go to ``out`` (n, K).

    Rows that are not finite get NaN outputs. Mutates only ``work`` and ``out``.
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
            continue
        if task == T_CLASSIFICATION:
            m = A[oo]
            for k in range(1, K):
                m = max(m, A[oo + k])
            total = 0.0
            for k in range(K):
                e = np.exp(np.float64(A[oo + k] - m))
                out[s, k] = e
                total += e
            for k in range(K):
                out[s, k] = out[s, k] / total
        else:
            for k in range(K):
                out[s, k] = A[oo + k]



@kernel
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
    for r in rows:
        if cls:
            c, y = Yc[r], Yr[0]
        else:
            c, y = -1, Yr[r]
        forward(table, pbuf, work, X[r])
        loss, _, _ = head(table, work, icfg[I_TASK], c, y)
        total += loss
        chain_sweep(table, ltab, pbuf, work, diag, cfg, icfg, fst, M_BACKPROP, True)
    return total
