"""Many models in one daemon: routing by stream, per-model checkpoints, commands, exports and
refinement, adding and removing models live, parallel learning, and the config file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import zmq
from stream_helpers import Served, serve_process, short_folder
from test_daemon_batches import Frame

from tweenstream import Dense, Learner, Network
from tweenstream.cli import serve_defaults, serve_parser
from tweenstream.stream import protocol
from tweenstream.stream.client import Control, Producer
from tweenstream.stream.daemon import Daemon
from tweenstream.stream.model_plans import ModelPlan, own_config, plan_from_table
from tweenstream.stream.routing import Routes
from tweenstream.stream.settings import ServeConfig

SENSORS = {"routes": ["sensor-*"], "inputs": 8, "outputs": 4, "hidden": [16], "mode": "tween",
           "seed": 1}
PRICES = {"routes": ["price-*", "fx"], "inputs": 3, "outputs": 1, "hidden": [8],
          "task": "regression", "mode": "backprop", "seed": 2, "reservoir": 400,
          "settings": {"learning_rate": 0.02}}


def _builder(config: ServeConfig):
    args = serve_defaults()
    args.checkpoint_dir = config.checkpoint_dir
    return partial(plan_from_table, args=args, settings={}, parser=serve_parser())


def two_models(config: ServeConfig) -> Daemon:
    """The daemon of a config file with [models.sensors] and [models.prices]."""
    build = _builder(config)
    plans = {"sensors": build("sensors", SENSORS), "prices": build("prices", PRICES)}
    return Daemon.serve(plans, config, log=io.StringIO(), builder=build)


def _sensor_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
    return X, (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)


def _price_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    return X, (X @ np.array([[0.5], [-1.0], [0.25]], np.float32))


def _send(served: Served, stream: str, batches, start_seq: int = 0) -> None:
    with Producer(served.config.data, stream=stream, start_seq=start_seq) as p:
        for X, y in batches:
            assert p.learn(X, y)


@pytest.fixture
def served():
    s = Served(two_models, learner_threads=2)
    yield s
    s.stop()


def test_streams_go_to_their_models_and_each_learns_only_its_own(served):
    _send(served, "sensor-1", [_sensor_rows(50, i) for i in range(3)])
    _send(served, "price-eu", [_price_rows(40, i) for i in range(2)])
    _send(served, "fx", [_price_rows(20, 9)])
    _send(served, "nobody", [_sensor_rows(5)])  # no route: refused, nothing learned
    _send(served, "sensor-2", [_price_rows(5)])  # the wrong shape for its model
    with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push:  # the header names the model
        push.connect(served.config.data)
        X, y = _price_rows(10, 5)
        push.send_multipart(protocol.encode("learn", X, y, seq=0, stream="zz", model="prices"))
        st = served.wait(lambda st: st["messages"] == 7 and sum(
            st["rejected_messages"].values()) == 2)
    assert st["rejected_messages"] == {"no_model": 1, "wrong_shape": 1}
    models = st["models"]
    assert models["sensors"]["samples_seen"] == 150 and models["prices"]["samples_seen"] == 110
    assert models["prices"]["routes"] == ["fx", "price-*"]
    assert models["sensors"]["rejected"] == 1  # the wrong shape, counted where it was routed
    assert "samples_seen" not in st  # two models: no single learner at the top
    prices = served.control.status(model="prices")
    assert prices["model"] == "prices" and prices["samples_seen"] == 110
    assert "running_mae" in prices and prices["counters"]["samples"] == 110
    assert prices["settings"]["learning_rate"] == 0.02
    assert served.control.status(model="sensors")["settings"]["learning_rate"] != 0.02
    assert set(served.control.streams(model="prices")) == {"price-eu", "fx", "zz"}
    assert served.control.acked("price-eu")["applied_through"] == 1  # routed by its stream
    assert served.control.acked("sensor-1")["applied_through"] == 2


def test_predictions_and_commands_go_to_the_model_named_or_routed(served):
    X8, _ = _sensor_rows(6)
    X3, _ = _price_rows(6)
    assert served.control.predict(X8, stream="sensor-9").shape == (6, 4)
    assert served.control.predict(X3, stream="fx").shape == (6, 1)
    assert served.control.predict(X3, model="prices").shape == (6, 1)
    with pytest.raises(ValueError, match="no_model: no route for stream 'other'"):
        served.control.predict(X8, stream="other")
    with pytest.raises(ValueError, match="wrong_shape"):
        served.control.predict(X3, stream="sensor-9")
    assert served.control.status(model="sensors")["predict_latency"]["count"] == 1
    reply = served.control.set_phase("backprop")
    assert reply["code"] == "model_required" and "sensors, prices" in reply["reason"]
    assert served.control.set_phase("backprop", model="nope")["code"] == "unknown_model"
    assert served.control.set_phase("tween-heuristic", model="sensors")["phase"] == \
        "tween-heuristic"
    assert served.control.status(model="prices")["phase"] == "backprop"
    assert served.control.configure(model="prices", momentum=0.5)["settings"]["momentum"] == 0.5
    assert served.control.configure(model="prices", momentum=-1)["code"] == "bad_request"
    assert served.control.status(model="sensors")["settings"]["momentum"] != 0.5
    paths = served.control.checkpoint()["paths"]  # no model named: every model
    assert set(paths) == {"sensors", "prices"}
    assert Path(paths["prices"]).parent == Path(served.config.checkpoint_dir) / "models/prices"


def test_each_model_exports_and_refines_on_its_own(served):
    _send(served, "price-1", [_price_rows(100, i) for i in range(4)])
    served.wait(lambda st: st["models"]["prices"]["samples_seen"] == 400)
    assert served.control.call("refine", model="sensors")["code"] == "no_refinement"
    assert served.control.call("refine", model="prices")["ok"]
    st = served.wait(lambda st: (st["models"]["prices"]["refinement"] or {}).get("accepted", 0)
                     + st["models"]["prices"]["refinement"].get("rejected", 0) == 1, timeout=60)
    assert st["models"]["sensors"]["refinement"] is None
    job = served.control.export("s.onnx", model="sensors")
    assert job["state"] == "done", job
    assert (Path(served.config.checkpoint_dir) / "models/sensors/exports/s.onnx").exists()
    assert served.control.export("p.onnx")["code"] == "model_required"


def test_checkpoints_are_per_model_and_a_restart_resumes_each(served):
    _send(served, "sensor-1", [_sensor_rows(30, i) for i in range(2)])
    _send(served, "price-1", [_price_rows(30, 0)])
    _send(served, "nobody", [_sensor_rows(3)])
    served.wait(lambda st: st["messages"] == 3 and st["rejected_messages"].get("no_model"))
    before = {n: served.daemon.models[n].learner.arena.params.copy() for n in ("sensors",
                                                                             "prices")}
    served.restart()
    st = served.control.status()
    assert {n: m["samples_seen"] for n, m in st["models"].items()} == {"sensors": 60,
                                                                       "prices": 30}
    assert st["rejected_messages"] == {"no_model": 1}  # the daemon's own counts survive too
    for name, params in before.items():
        assert np.array_equal(served.daemon.models[name].learner.arena.params, params)
        assert list((Path(served.config.checkpoint_dir) / "models" / name).glob("ckpt-*.tsm"))
    assert served.control.acked("sensor-1")["durable_through"] == 1


def test_models_are_added_and_removed_live_and_kept_across_restarts(served):
    ctl = served.control
    reply = ctl.add_model("extra", routes=["extra-*"], inputs=4, outputs=2, hidden=[8])
    assert reply["ok"] and reply["persistent"] and reply["routes"] == ["extra-*"], reply
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25, 4)).astype(np.float32)
    _send(served, "extra-1", [(X, (X[:, 0] > 0).astype(np.int64))] * 2)
    served.wait(lambda st: st["models"].get("extra", {}).get("samples_seen") == 50)
    assert ctl.models()["models"]["extra"]["added_live"]
    served.restart()  # the added model comes back, with what it learned
    assert ctl_status(served)["extra"]["samples_seen"] == 50
    reply = served.control.remove_model("extra")
    assert reply["ok"] and reply["checkpoint"] and not reply["declared"]
    _send(served, "extra-1", [(X, (X[:, 0] > 0).astype(np.int64))])
    served.wait(lambda st: st["rejected_messages"].get("no_model") == 1)
    assert "extra" not in served.control.models()["models"]
    registry = json.loads((Path(served.config.checkpoint_dir) / "models.json").read_text())
    assert registry == {"added": {}}
    reply = served.control.add_model("extra", routes=["extra-*"], inputs=4, outputs=2,
                                     hidden=[8])
    assert reply["samples_seen"] == 50  # added again: it resumes from its checkpoint
    removed = served.control.remove_model("prices")
    assert removed["declared"]  # of the config: back at the next start
    served.restart()
    assert set(ctl_status(served)) == {"sensors", "prices", "extra"}


def test_a_model_re_added_with_another_network_is_refused(served):
    assert served.control.add_model("extra", routes=["extra-*"], inputs=4, outputs=2)["ok"]
    assert served.control.remove_model("extra")["ok"]
    reply = served.control.add_model("extra", routes=["extra-*"], inputs=5, outputs=2)
    assert reply["code"] == "bad_request" and "another network" in reply["reason"], reply
    assert "extra" not in ctl_status(served)
    for name in ("z1", "a1"):  # recorded, and restored, in the order added
        assert served.control.add_model(name, routes=[f"{name}-*"], inputs=4, outputs=2)["ok"]
    registry = json.loads((Path(served.config.checkpoint_dir) / "models.json").read_text())
    assert list(registry["added"]) == ["z1", "a1"]
    served.restart()
    assert list(served.daemon.models) == ["sensors", "prices", "z1", "a1"]


def test_a_checkpoint_that_cannot_be_written_keeps_the_model_and_the_loop(served):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    _send(served, "price-1", [_price_rows(10)])
    served.wait(lambda st: st["messages"] == 1)
    served.daemon.models["prices"].store.write = full_disk
    reply = served.control.remove_model("prices")
    assert reply["code"] == "checkpoint_failed" and "No space left" in reply["reason"], reply
    assert "prices" in ctl_status(served)
    reply = served.control.checkpoint()
    assert reply["code"] == "checkpoint_failed" and reply["paths"]["sensors"], reply
    _send(served, "price-1", [_price_rows(10, 1)], start_seq=1)  # the loop goes on learning
    st = served.wait(lambda st: st["messages"] == 2)
    assert served.control.status(model="prices")["counters"]["checkpoints_failed"] == 2
    assert st["models"]["prices"]["samples_seen"] == 20


def test_models_share_no_checkpoint_folder_and_a_loaded_model_takes_its_settings(tmp_path):
    base = ServeConfig(data=f"ipc://{tmp_path}/d", control=f"ipc://{tmp_path}/c",
                       checkpoint_dir=str(tmp_path / "ck"))
    saved = Learner(Network(4, [Dense(3)]))
    saved.save(tmp_path / "m.tsm")
    from tweenstream import load

    plans = {n: ModelPlan(lambda: load(tmp_path / "m.tsm"), base, (f"{n}-*",),
                          {"learning_rate": 0.07}) for n in ("a", "b")}
    with pytest.raises(ValueError, match="would share the checkpoint folder"):
        Daemon.serve(plans, base, log=io.StringIO())
    plans["b"].config = own_config(base, "b")
    d = Daemon.serve(plans, base, log=io.StringIO())
    assert d.models["b"].learner.config.learning_rate == 0.07  # from a file, not resumed


def ctl_status(served: Served) -> dict:
    return served.control.status()["models"]


BAD_TABLES = [
    ({"routes": ["fx"], "inputs": 3, "outputs": 2}, "bad_request", "already routed"),
    ({"routes": ["q-*"], "colour": "red"}, "bad_request", "unknown key(s) ['colour']"),
    ({"routes": ["q-*"], "settings": {"learning_rate": -1}}, "bad_request", "learning_rate"),
    ({"routes": ["q-*"], "inputs": 300}, "too_wide", "declare it in the config file"),
    ({"routes": "q-*"}, "bad_request", "routes must be a non-empty list"),
    ({"model": "/etc/passwd"}, "bad_request", "cannot be set by add-model"),
    ({"output_dir": "/tmp/elsewhere"}, "bad_request", "cannot be set by add-model"),
    ({"refine_server": "tcp://10.0.0.9:1"}, "bad_request", "cannot be set by add-model"),
    ({"strict_order": "false"}, "bad_request", "strict_order must be true or false"),
    ({"hidden": [0]}, "bad_request", "hidden sizes must be >= 1"),
    ({"mode": "fast"}, "bad_request", "mode must be one of"),
    ({"inputs": 2.5}, "bad_request", "expected a positive int"),
    ({"hidden": [50_000, 50_000]}, "bad_request", "over its checkpoint_budget"),
    ({"label_capacity": 10**9}, "bad_request", "over its checkpoint_budget"),
    ({"routes": ["sensor-1"]}, "stream_taken", "tracked by model 'sensors'"),
]


def test_a_bad_model_is_refused_with_a_reason_and_nothing_changes(served):
    _send(served, "sensor-1", [_sensor_rows(5)])
    served.wait(lambda st: st["messages"] == 1)
    for table, code, words in BAD_TABLES:  # one daemon, every refusal in turn
        reply = served.control.add_model("q", **table)
        assert reply["code"] == code and words in reply["reason"], (table, reply)
        assert set(ctl_status(served)) == {"sensors", "prices"}
    bad_name = served.control.call("add-model", model="../q", table={})
    assert bad_name["code"] == "bad_request" and "model name" in bad_name["reason"]
    assert served.control.add_model("sensors")["code"] == "model_exists"
    assert served.control.remove_model("q")["code"] == "unknown_model"


def test_models_learned_in_parallel_learn_exactly_what_each_learns_alone(tmp_path):
    """A drain of interleaved messages of three models, learned by a pool of threads, leaves
    each model exactly as learning its own messages alone, in order, does."""
    def daemon(threads: int) -> Daemon:
        base = ServeConfig(data=f"ipc://{tmp_path}/d{threads}", learner_threads=threads,
                           control=f"ipc://{tmp_path}/c{threads}")
        plans = {f"m{i}": ModelPlan(partial(Learner, Network(4, [Dense(8, "tanh"), Dense(3)]),
                                            seed=i), own_config(base, f"m{i}"), (f"s{i}",))
                 for i in range(3)}
        return Daemon.serve(plans, base, log=io.StringIO())

    rng = np.random.default_rng(0)
    batch, alone = [], {f"m{i}": Learner(Network(4, [Dense(8, "tanh"), Dense(3)]), seed=i)
                        for i in range(3)}
    for k in range(60):
        i = int(rng.integers(0, 3))
        X = rng.standard_normal((int(rng.integers(1, 9)), 4)).astype(np.float32)
        y = rng.integers(0, 3, len(X))
        batch.append([Frame(f) for f in protocol.encode("learn", X, y, seq=k, stream=f"s{i}")])
        alone[f"m{i}"].learn_many(X, y)
    parallel, serial = daemon(2), daemon(1)
    parallel._on_batch(batch)
    serial._on_batch(batch)
    for name, learner in alone.items():
        for d in (parallel, serial):
            assert np.array_equal(d.models[name].learner.arena.params, learner.arena.params)
    assert parallel.counters == serial.counters and parallel.counters["messages"] == 60


def test_routes_exact_names_first_then_patterns_in_declared_order():
    r = Routes()
    r.add("a", ["s-*"])
    r.add("b", ["s-1", "t-?"])
    r.add("c", ["*"])
    assert [r.model_for(s) for s in ("s-1", "s-2", "t-9", "t-10", "u")] == \
        ["b", "a", "b", "c", "c"]
    with pytest.raises(ValueError, match="already routed to model 'b'"):
        r.add("d", ["x", "s-1"])
    assert r.model_for("x") == "c"  # all or nothing: "x" was not routed to d
    r.remove("b")
    assert r.model_for("s-1") == "a" and r.of("c") == ["*"]


def _config_file(folder: Path, text: str) -> Path:
    path = folder / "serve.toml"
    path.write_text(text)
    return path


CONFIG = """
[serve]
checkpoint_interval = 0.5

[settings]
learning_rate = 0.01

[models.sensors]
routes = ["sensor-*"]
inputs = 8
outputs = 4
hidden = [16]
mode = "tween"

[models.prices]
routes = ["price-*"]
inputs = 3
outputs = 1
hidden = [8]
task = "regression"
mode = "backprop"
[models.prices.settings]
learning_rate = 0.02
"""


def test_serve_with_a_config_file_of_two_models_a_prometheus_scrape_and_top():
    pytest.importorskip("prometheus_client")
    pytest.importorskip("rich")
    from test_prometheus import _scrape, _until
    from test_top import _run_in_pty

    with short_folder() as folder:
        conf = _config_file(folder, CONFIG)
        with serve_process(folder, "--config", str(conf), "--checkpoint-dir",
                           str(folder / "ck"), "--prometheus", "127.0.0.1:0",
                           "--metrics-interval", "0.05", "--set", "momentum=0.5") as proc:
            with Control(f"ipc://{folder}/ctl", timeout=120, retries=1) as control:
                st = control.status()
                assert set(st["models"]) == {"sensors", "prices"}
                assert control.status(model="prices")["settings"]["learning_rate"] == 0.02
                assert control.status(model="sensors")["settings"]["learning_rate"] == 0.01
                assert control.status(model="sensors")["settings"]["momentum"] == 0.5
                for stream, rows in (("sensor-a", _sensor_rows(64)), ("price-a",
                                                                      _price_rows(32))):
                    with Producer(f"ipc://{folder}/data", stream=stream) as p:
                        p.learn(*rows)
                url = st["endpoints"]["prometheus"]
                got = _until(lambda: _scrape(url), lambda m: m.get(
                    ("tweenstream_samples_total", (("model", "prices"),))) == 32 and m.get(
                    ("tweenstream_samples_total", (("model", "sensors"),))) == 64)
                assert ("tweenstream_running_mae", (("model", "prices"),)) in got
                assert ("tweenstream_running_accuracy", (("model", "sensors"),)) in got
                shown = subprocess.run([sys.executable, "-m", "tweenstream", "status",
                                        "--control", f"ipc://{folder}/ctl", "--model",
                                        "prices"], capture_output=True, text=True, timeout=60)
                assert json.loads(shown.stdout)["settings"]["learning_rate"] == 0.02
                code, screen = _run_in_pty([sys.executable, "-m", "tweenstream", "top",
                                            "--control", f"ipc://{folder}/ctl",
                                            "--iterations", "2", "--interval", "0.1"])
                assert code == 0, screen
                rows = {line.split("│")[1].strip(): line for line in screen.splitlines()
                        if line.count("│") > 5}
                assert {"sensors", "prices"} <= set(rows), screen
                assert "accuracy" in rows["sensors"] and "mae" in rows["prices"], screen
                assert control.shutdown()["ok"]
            assert proc.wait(timeout=60) == 0
        ck = folder / "ck" / "models"
        assert list((ck / "sensors").glob("ckpt-*.tsm")) and list((ck / "prices").glob("ckpt-*"))
        events = [json.loads(line) for line in (folder / "log").read_text().splitlines()]
        serving = {e["model"]: e["routes"] for e in events if e["event"] == "serving"}
        assert serving == {"sensors": ["sensor-*"], "prices": ["price-*"]}


@pytest.mark.parametrize("text, words", [
    ('[models."../x"]\ninputs = 3\n', "model name must be"),
    ('[models.a]\ncolor = 1\n', "[models.a]: unknown key(s) ['color']"),
    ('[models.a]\nroutes = ["s"]\n[models.b]\nroutes = ["s"]\n',
     "stream 's' is already routed to model 'a'"),
    ('[models.a]\n[models.a.settings]\nmomentum = 2.0\n', "momentum"),
])
def test_a_bad_models_table_stops_serve_with_a_clear_message(text, words, capsys):
    from tweenstream.cli import main

    with short_folder() as folder:
        conf = _config_file(folder, text)
        code = main(["serve", "--config", str(conf), "--data", f"ipc://{folder}/d",
                     "--control", f"ipc://{folder}/c"])
        err = capsys.readouterr().err
        assert code == 2 and words in err, err
