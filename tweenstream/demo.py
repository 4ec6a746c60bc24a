"""The demos behind ``tweenstream demo``: the daemon demo (default) and the in-process one."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tweenstream.modes import MODES
from tweenstream.stream.client import Control, Producer
from tweenstream.stream.sources import drifting_quadrants


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the daemon on the built-in drifting stream")
    p.add_argument("--samples", type=_positive_int, default=200_000)
    p.add_argument("--mode", default="hybrid",
                   choices=MODES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report-every", type=_positive_int, default=20_000)
    p.add_argument("--out", type=Path, default=Path("build/demo"),
                   help="folder for checkpoints, the daemon's log and the saved model")
    p.add_argument("--in-process", action="store_true",
                   help="learn in this process, without a daemon")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {value}")
    return value


def run_demo(args: argparse.Namespace) -> int:
    return in_process(args) if args.in_process else with_daemon(args)


def _bar(args: argparse.Namespace) -> Any:
    from tqdm import tqdm

    return tqdm(total=args.samples, unit="sample", unit_scale=True, leave=False,
                disable=args.no_progress or None)


def with_daemon(args: argparse.Namespace) -> int:
    """Start a daemon, stream to it, switch phase, checkpoint, stop, resume, stop."""
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sockets = Path(tempfile.mkdtemp(prefix="tweenstream-demo-"))
    data, ctl = f"ipc://{sockets}/data", f"ipc://{sockets}/control"
    serve = [sys.executable, "-m", "tweenstream", "serve", "--data", data, "--control", ctl,
             "--mode", args.mode, "--seed", str(args.seed), "--checkpoint-dir",
             str(out / "checkpoints"), "--output-dir", str(out), "--log",
             str(out / "daemon.log")]
    drift_at = args.samples // 2
    print(f"tweenstream demo: a daemon learns {args.samples:,} samples of the drifting quadrant "
          f"stream (rule switches at {drift_at:,}); mode={args.mode}, network 8-32-32-4 tanh")
    _compile_once(args.mode)
    daemon = subprocess.Popen(serve)
    try:
        with Control(ctl, timeout=60.0, retries=1) as control:
            control.status()  # waits while the daemon starts and warms its kernels
            print(f"  daemon up (pid {daemon.pid}); its log: {out / 'daemon.log'}")
            _stream(args, data, control, drift_at)
            reply = control.set_phase("backprop")
            print(f"  set-phase backprop -> phase {reply['phase']}")
            checkpoint = control.checkpoint()["path"]
            before = control.status()
            print(f"  checkpoint written: {checkpoint}")
            control.shutdown()
        code = daemon.wait(timeout=30)
        print(f"  daemon stopped (exit {code}); restarting it from the checkpoint")
        daemon = subprocess.Popen(serve)
        with Control(ctl, timeout=60.0, retries=1) as control:
            after = control.status()
            seq = after["streams"]["demo"]["last_seq"]
            print(f"  resumed: samples_seen {after['samples_seen']:,} (was "
                  f"{before['samples_seen']:,}), stream 'demo' last seq {seq}, phase "
                  f"{after['phase']}")
            same = (after["samples_seen"] == before["samples_seen"]
                    and seq == before["streams"]["demo"]["last_seq"])
            control.save("model.tsm")
            control.shutdown()
        code = daemon.wait(timeout=30)
        print(f"done: resume {'exact' if same else 'NOT exact'}; model saved to "
              f"{out / 'model.tsm'}; daemon exit {code}")
        return 0 if same and code == 0 else 1
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=30)
        shutil.rmtree(sockets, ignore_errors=True)


def _compile_once(mode: str) -> None:
    """Fill Numba's on-disk cache here, with a progress line, so the daemon starts in a second
    (the demo's network uses Dense layers only: only Dense kernels compile)."""
    from tweenstream.runtime.warmup import compile_kinds

    took = compile_kinds(["dense"], heuristic=mode == "tween-heuristic", progress=True)
    if took > 2:
        print(f"  compiled the kernels in {took:.0f} s (first run only: they are cached now)")


def _stream(args: argparse.Namespace, data: str, control: Control, drift_at: int) -> None:
    bar = _bar(args)
    sent, next_report, t0 = 0, args.report_every, time.monotonic()
    with Producer(data, stream="demo") as producer:
        for X, y in drifting_quadrants(args.samples, switch_at=drift_at, seed=args.seed):
            producer.learn(X, y)
            sent += len(y)
            bar.update(len(y))
            if sent >= next_report or sent == args.samples:
                st = _wait_for(control, sent)
                s = st["streams"]["demo"]
                at_drift = sent - args.report_every < drift_at <= sent
                drift = "  <- the rule switches here" if at_drift else ""
                bar.write(f"  {sent:>9,} samples  accuracy (recent) {s['recent_accuracy']:6.1%}"
                          f"  phase {st['phase']:<9} explosions {st['explosions']}  "
                          f"{sent / (time.monotonic() - t0):,.0f} samples/s{drift}")
                next_report += args.report_every
    bar.close()
    st = control.status()
    if st["switched_at"] is not None:
        print(f"  the hybrid learner switched tween -> backprop at sample {st['switched_at']:,}")


def _wait_for(control: Control, samples: int) -> dict[str, Any]:
    """Status once the daemon has learned ``samples`` (bounded: the daemon is local)."""
    deadline = time.monotonic() + 30.0
    while True:
        st = control.status()
        if st["samples_seen"] >= samples or time.monotonic() > deadline:
            return st
        time.sleep(0.005)  # polling a status, not synchronising threads


def in_process(args: argparse.Namespace) -> int:
    """Learn the drifting stream with test-then-train scoring in this process, then save."""
    from tweenstream import Dense, Learner, Network

    net = Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])
    model = Learner(net, mode=args.mode, seed=args.seed)
    model.warm(progress=not args.no_progress)
    drift_at = args.samples // 2
    print(f"tweenstream demo (in-process): {args.samples:,} samples of the drifting quadrant "
          f"stream (rule switches at {drift_at:,}); mode={args.mode}, network 8-32-32-4 tanh")
    bar = _bar(args)
    last_seen, last_correct, last_time = 0, 0.0, time.perf_counter()
    switched_reported = False
    learn_time = 0.0
    for X, y in drifting_quadrants(args.samples, switch_at=drift_at, seed=args.seed):
        t0 = time.perf_counter()
        model.learn_many(X, y)
        learn_time += time.perf_counter() - t0
        bar.update(len(y))
        st = model.state()
        seen = st["samples_seen"]
        if st["switched_at"] is not None and not switched_reported:
            why = ("a backprop copy won a race on the same samples" if st["races_won_by_backprop"]
                   else "its trigger fired")
            bar.write(f"  -> switched tween -> backprop at sample {st['switched_at']:,} ({why})")
            switched_reported = True
        if last_seen < drift_at <= seen:
            bar.write(f"  -> the labelling rule switches at sample {drift_at:,}")
        if seen - last_seen >= args.report_every or seen == args.samples:
            _, correct, _ = model.totals()
            now = time.perf_counter()
            bar.write(f"  {seen:>9,} samples  accuracy (last {seen - last_seen:,}) "
                      f"{(correct - last_correct) / (seen - last_seen):6.1%}  "
                      f"phase {st['phase']:<9} explosions {st['explosions']}  "
                      f"{(seen - last_seen) / (now - last_time):,.0f} samples/s")
            last_seen, last_correct, last_time = seen, correct, now
    bar.close()
    st = model.state()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "model.tsm"
    model.save(path)
    print(f"done: prequential accuracy {st['prequential_accuracy']:.1%} over "
          f"{st['samples_seen']:,} samples; explosions recovered {st['explosions']} (rollbacks "
          f"{st['rollbacks']}); learning speed {st['samples_seen'] / learn_time:,.0f} "
          f"samples/s; model saved to {path}")
    return 0
