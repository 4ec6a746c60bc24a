"""Index layout of every array the compiled interpreter shares with Python.

The interpreter takes a handful of flat arrays instead of objects, so that one compilation serves
every network of a kind set (``engine.py``). This module names their rows and slots; compiled
code reads these names as compile-time constants.

Arrays (shapes):
- ``table`` int64 (L, NCOL): one plan row per layer (``C_*`` columns).
- ``ltab`` float64 (L, NLCOL): per-layer rate multipliers and target clamps (``LT_*``).
- ``pbuf`` float32 (5, P): parameters, momentum (or Adam's first moment), batch accumulator,
  shadow, second moments (``P_*`` rows).
- ``work`` float32 (5, S): activations, pre-activations, backward signal, local error and
  targets of the *current* sample, one slot per layer output (``W_*`` rows).
- ``diag`` float64 (4, L): per-layer gap, link budget, depth barrier, parameter norm².
- ``cfg`` float64 / ``icfg`` int64: configuration (``F_*`` / ``I_*``).
- ``fst`` float64 / ``ist`` int64: learning state and counters (``S_*`` / ``N_*``).
"""

from tweenstream.models.registry import MAX_DIMS, LayerKind
from tweenstream.modes import MODES as _MODES

# --- plan table columns -------------------------------------------------------------------
C_OP = 0  # op code of the kind
C_ACT = 1  # activation code
C_IN = 2  # offset of the layer input in a work row
C_NIN = 3  # input size
C_OUT = 4  # offset of the layer output in a work row
C_NOUT = 5  # output size
C_P = 6  # offset of the layer's parameters in a pbuf row
C_NP = 7  # number of parameters
C_S = 8  # offset of the layer's scratch in a work row
C_NS = 9  # scratch size
C_HEUR = 10  # heuristic target rule: H_PROJECT, H_PASS or H_KEEP
C_DIM = 11  # first of MAX_DIMS kind-specific integers, named by each kind's row layout
NCOL = C_DIM + MAX_DIMS
H_PROJECT = 0
H_PASS = 1
H_KEEP = 2
HEURISTIC_RULES = ("project", "pass", "keep")  # C_HEUR values, in code order


def dim(kind: LayerKind, name: str) -> int:
    """Plan column of the kind-specific integer ``name``: one of the kind's ``dims``, or the
    offset of one of its ``params`` (in a pbuf row) or ``segments`` (in a work row).

    Kernels read it once at import, as a compile-time constant: ``KH = dim(CONV2D, "kh")``.

    Examples
    --------
    >>> from tweenstream.models.dense import DENSE
    >>> dim(DENSE, "n_out") - C_DIM
    1
    """
    names = kind.row_names
    if name not in names:
        raise KeyError(f"layer kind {kind.name!r} has no row integer {name!r}; it declares "
                       f"{names}")
    return C_DIM + names.index(name)

# --- per-layer float table ------------------------------------------------------------------
LT_TYPE_RATE = 0
LT_DEPTH = 1
LT_LO = 2  # tween target clamp
LT_HI = 3
NLCOL = 4

# --- pbuf rows ------------------------------------------------------------------------------
P_PARAM = 0
P_VEL = 1
P_ACC = 2  # per-sample descent directions accumulated (batch_size > 1, adam, adagrad)
P_SHADOW = 3
P_SQ = 4  # Adam's second moment, AdaGrad's sum of squares (last: older 4-row files pad it)
NPROW = 5

# --- work rows ------------------------------------------------------------------------------
W_ACT = 0
W_PRE = 1
W_DELTA = 2  # g = -dloss/da
W_DZ = 3  # g * f'(z), then the local error the update uses
W_TGT = 4  # tween target
W_SEEN = 5  # at the head slot only: 1.0 for each output unit a class was learned on
NWROW = 6

# --- diag rows ------------------------------------------------------------------------------
D_GAP = 0
D_BUDGET = 1
D_BARRIER = 2
D_NORM2 = 3
NDROW = 4

# --- modes and tasks ------------------------------------------------------------------------
M_BACKPROP = 0
M_TWEEN = 1
M_HEURISTIC = 2
M_HYBRID = 3
MODES = _MODES  # by mode code: MODES[M_TWEEN] == "tween"
T_CLASSIFICATION = 0
T_REGRESSION = 1

# --- float config ---------------------------------------------------------------------------
F_LR = 0  # backprop learning rate
F_BP_MOMENTUM = 1
F_GRAD_CLIP = 2  # elementwise, inf = off
F_TWEEN_RATE = 3
F_TWEEN_MOMENTUM = 4
F_GRADIENT_SCALE = 5
F_DELTA_CLIP = 6
F_IGNORE = 7  # ignore_threshold
F_WEIGHT_MULT = 8
F_BIAS_MULT = 9
F_EXPLOSION_LIMIT = 10
F_MAX_JUMP = 11
F_FAST_ALPHA = 12
F_SLOW_ALPHA = 13
F_BACKOFF = 14
F_BACKOFF5 = 15
F_BACKOFF10 = 16
F_RATE_FLOOR = 17
F_RECOVERY = 18
F_METRIC_ALPHA = 19
F_PLATEAU_GAIN = 20
F_NORM_GROWTH = 21  # soft trigger also needs |params| > this x |shadow|
F_BETA1 = 22  # adam: decay of the first moment
F_BETA2 = 23  # adam: decay of the second moment
F_EPSILON = 24  # adam, adagrad: added to the root of the second moment
F_COSINE = 25  # regression: weight of the cosine loss in the mix with squared error (0: none)
NFCFG = 26

# --- int config -----------------------------------------------------------------------------
I_MODE = 0
I_TASK = 1
I_BATCH = 2
I_SNAPSHOT_EVERY = 3
I_WARMUP = 4  # soft trigger is checked only after this many samples
I_SWITCH_AFTER = 5  # hybrid: switch after this many samples (0 = off)
I_PLATEAU_WINDOW = 6  # hybrid: window of the plateau trigger (0 = off)
I_PLATEAU_PATIENCE = 7
I_LOCAL_DERIV = 8
I_CHAIN_GATE = 9
I_SOFT_DETECT = 10
I_STREAK_RESET = 11  # clean steps after which the explosion streak is forgotten
I_OPTIMIZER = 12  # backprop's optimiser: O_SGD, O_ADAM or O_ADAGRAD
I_DIAG_EVERY = 13  # gaps, budgets and the soft trigger every this many samples
I_COSINE_STEP = 14  # cosine loss: per group of this many outputs (a sequence's step; 0: all)
NICFG = 15

# --- backprop optimisers --------------------------------------------------------------------
O_SGD = 0
O_ADAM = 1
O_ADAGRAD = 2
OPTIMIZERS = ("sgd", "adam", "adagrad")  # by optimiser code: OPTIMIZERS[O_ADAM] == "adam"

# --- float state ----------------------------------------------------------------------------
S_RATE = 0  # adaptive rate multiplier
S_FAST = 1  # fast EMA of the mean gap
S_SLOW = 2  # slow EMA of the mean gap
S_LOSS = 3  # running (EMA) prequential loss
S_METRIC = 4  # running (EMA) prequential accuracy or MAE
S_NORM2 = 5  # parameter norm² after the last good step
S_LAST_LOSS = 6
S_WIN_SUM = 7  # hybrid plateau window accumulator (S_WIN_SUM, S_WIN_BEST: one slice)
S_WIN_BEST = 8
S_METRIC_SUM = 9  # cumulative correct (classification) or absolute error (regression)
S_LOSS_SUM = 10
S_SHADOW_NORM2 = 11  # parameter norm² of the shadow copy
S_SHADOW_LOSS = 12  # the running loss when the shadow copy was taken
NFST = 13

# --- int state ------------------------------------------------------------------------------
N_SEEN = 0
N_UPDATES = 1  # parameter updates applied
N_EXPLOSIONS = 2
N_ROLLBACKS = 3
N_REJECTED = 4  # samples that never reached the parameters (non-finite input/output)
N_CLEAN_SNAP = 5  # clean steps since the shadow was refreshed
N_STREAK = 6  # explosions since the last long clean run
N_CLEAN_EVENT = 7  # clean steps since the last explosion
N_SINCE_ROLLBACK = 8
N_PHASE = 9  # the mode in effect (hybrid switches it)
N_SWITCHED_AT = 10  # sample index of the hybrid switch, -1 before
N_BATCH_FILL = 11
N_WIN_FILL = 12  # (N_WIN_FILL, N_WIN_BAD: one slice, see drift.plateau_update)
N_WIN_BAD = 13
N_EVENT_HEAD = 14  # ring position of the next event record
N_EMA_STARTED = 15  # the gap EMAs have been started (by the first clean step)
N_OPT_STEP = 16  # adam/adagrad steps since the optimiser state was last reset (bias correction)
N_DIAG_AT = 17  # the sample (N_SEEN) at which gaps and link budgets were last computed
N_EVENTS = 18  # start of the event ring: pairs (sample index, reason)
EVENT_RING = 32
N_SNAP_ROLLBACKS = N_EVENTS + 2 * EVENT_RING  # rollbacks to the current shadow copy
N_STORMS = N_SNAP_ROLLBACKS + 1  # shadow copies rolled back to STORM_AT times or more
N_MOST_SNAP_ROLLBACKS = N_SNAP_ROLLBACKS + 2  # the most rollbacks to one shadow copy
N_HOLD = N_SNAP_ROLLBACKS + 3  # notches n the rate's ceiling is held down: 2^-n (safety.ceiling)
NIST = N_SNAP_ROLLBACKS + 4
STORM_AT = 3  # this many rollbacks to one shadow copy make a storm

# --- explosion reasons ----------------------------------------------------------------------
R_INPUT = 1
R_OUTPUT = 2
R_PARAMS = 3
R_JUMP = 4
R_GAP = 5
REASONS = {R_INPUT: "non-finite input", R_OUTPUT: "non-finite output or signal",
           R_PARAMS: "non-finite parameters", R_JUMP: "parameter norm jump",
           R_GAP: "gap growth"}
