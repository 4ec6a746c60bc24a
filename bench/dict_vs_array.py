"""``python -m bench.dict_vs_array [SETTINGS]``: µs per ``learn_one`` / ``predict_one`` call for
the same 10-feature samples as arrays and as dicts, in one process (best of 5 runs of 4,000).

It uses only the public API, so it also runs against an older checkout (``PYTHONPATH=that
checkout``), where dicts may be refused or slower; SETTINGS is a Python dict literal of Learner
keyword arguments, e.g. ``"{'scaling': 'off', 'optimizer': 'sgd'}"``.
"""

from __future__ import annotations

import ast
import sys
import time

import numpy as np

from tweenstream import Dense, Learner, Network


def _best(call, rows, labels=None) -> float:
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        if labels is None:
            for x in rows:
                call(x)
        else:
            for x, y in zip(rows, labels, strict=True):
                call(x, y)
        best = min(best, (time.perf_counter() - start) / len(rows) * 1e6)
    return float(best)


def main(argv: list[str]) -> int:
    settings = ast.literal_eval(argv[0]) if argv else {}
    model = Learner(Network(10, [Dense(32, "relu"), Dense(2)]), mode="backprop", seed=0,
                    **settings)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4_000, 10)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int).tolist()
    dicts = [{f"x{j}": float(v) for j, v in enumerate(row)} for row in X]
    model.learn_many(X[:10], np.array(y[:10]))
    out = {}
    for name, rows in (("array", list(X)), ("dict", dicts)):
        try:
            model.learn_one(rows[0], y[0])
            model.predict_one(rows[0])
        except (TypeError, ValueError) as err:
            out[name] = f"refused: {err}"
            continue
        out[name] = {"learn_one_us": round(_best(model.learn_one, rows, y), 2),
                     "predict_one_us": round(_best(model.predict_one, rows), 2)}
    print({"settings": settings, **out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
