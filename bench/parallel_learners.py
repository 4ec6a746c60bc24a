"""``python -m bench.parallel_learners``: aggregate samples/s of independent learners (one per
stream or model) learning at once, one per thread, for 1, 2 and 8 learners.

The compiled step releases the GIL (``nogil``), so learners of different streams run on
different cores inside one process. Shape A, tween and backprop (library defaults otherwise),
each thread learning 200 batches of 1,024 rows; best of 3 runs.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from tweenstream import Dense, Learner, Network

ROWS, BATCHES = 1_024, 200


def _learner(mode: str, seed: int) -> tuple[Learner, np.ndarray, np.ndarray]:
    net = Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])
    model = Learner(net, mode=mode, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((ROWS, 8)).astype(np.float32)
    y = rng.integers(0, 4, ROWS)
    model.learn_many(X, y)  # compile or load, and settle the input statistics
    return model, X, y


def aggregate(mode: str, threads: int) -> float:
    """Samples per second learned by ``threads`` learners together."""
    jobs = [_learner(mode, seed) for seed in range(threads)]
    best = 0.0
    for _ in range(3):
        start = threading.Barrier(threads + 1)

        def run(job: tuple[Learner, np.ndarray, np.ndarray], go: threading.Barrier) -> None:
            model, X, y = job
            go.wait()
            for _ in range(BATCHES):
                model.learn_many(X, y)

        workers = [threading.Thread(target=run, args=(job, start)) for job in jobs]
        for w in workers:
            w.start()
        start.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        best = max(best, threads * ROWS * BATCHES / (time.perf_counter() - t0))
    return best


def main() -> None:
    print("| mode | 1 learner samples/s | 2 learners, 2 threads | 8 learners, 8 threads |")
    print("|---|---|---|---|")
    for mode in ("tween", "backprop"):
        one, two, eight = (aggregate(mode, n) for n in (1, 2, 8))
        print(f"| {mode} | {one:,.0f} | {two:,.0f} ({two / one:.2f}x) | {eight:,.0f} "
              f"({eight / one:.2f}x) |", flush=True)


if __name__ == "__main__":
    main()
