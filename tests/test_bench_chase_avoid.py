"""bench/chase_avoid.py: the B6 environment, its schedule, delays and fixed policies as the notes
write them, and one quick run of every arm."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import chase_avoid as ca


def test_the_optimal_action_chases_or_flees_along_the_larger_offset():
    assert [ca.optimal(rx, ry, 0) for rx, ry in ((0.3, 0.1), (-0.3, 0.1), (0.1, 0.3),
                                                 (0.1, -0.3))] == [3, 2, 0, 1]
    assert [ca.optimal(rx, ry, 1) for rx, ry in ((0.3, 0.1), (-0.3, 0.1), (0.1, 0.3),
                                                 (0.1, -0.3))] == [2, 3, 1, 0]
    assert ca.optimal(0.2, -0.2, 0) == 1  # a tie goes to the y branch


def test_the_schedule_switches_at_thirds_or_on_window_boundaries():
    assert ca.switch_steps(10, 5_000, "thirds") == (16_667, 33_333)
    assert ca.switch_steps(15, 5_000, "test17") == (25_000, 50_000)
    task = ca.tasks(9, (3, 6))
    assert task.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="schedule"):
        ca.switch_steps(10, 10, "halves")


def test_the_target_walks_in_small_clamped_steps():
    xs, ys = ca.target_path(3, 20_000)
    path = np.array([xs, ys])
    assert ((path[:, 0] >= 0) & (path[:, 0] < 1)).all()
    assert path[:, 1:].min() >= 0.1 and path[:, 1:].max() <= 0.9
    assert np.abs(np.diff(path[:, 1:], axis=1)).max() <= 0.005
    assert ca.target_path(3, 100)[0] == xs[:100]  # seeded, whatever the length


def test_observations_and_the_delay_follow_the_loop_order():
    task = ca.tasks(3_000, (1_000, 2_000))
    seen: list[tuple[np.ndarray, int]] = []
    correct = ca.play(0, task, lambda t, obs, best: best, delay=1,
                      learn=lambda obs, best: seen.append((obs.copy(), best)))
    obs = np.array([o for o, _ in seen])
    best = np.array([b for _, b in seen])
    np.testing.assert_array_equal(obs[:, 7], task)
    np.testing.assert_allclose(obs[:, 4:6], obs[:, 2:4] - obs[:, 0:2], atol=1e-6)
    np.testing.assert_allclose(obs[:, 6], np.hypot(obs[:, 4], obs[:, 5]), rtol=1e-5)
    assert obs[0, 0] == obs[0, 1] == 0.5
    moved = np.abs(np.diff(obs[:, :2], axis=0)).sum(axis=1)
    assert moved.max() < 0.02 + 1e-6 and np.isclose(moved, 0.02, atol=1e-6).mean() > 0.5
    # acting one step late: the action executed at t is the optimal one of t - 1
    assert correct[0] == (best[0] == ca.NO_DECISION)
    np.testing.assert_array_equal(correct[1:], best[1:] == best[:-1])


def test_the_fixed_policies_score_what_the_notes_found():
    per_window = 3_000
    task = ca.tasks(3 * per_window, (per_window, 2 * per_window))

    def windows(arm):
        return ca.baseline(arm, 0, task, per_window, (per_window, 2 * per_window))["windows"]

    assert windows("baseline: perfect policy") == [100.0, 100.0, 100.0]
    assert windows("baseline: perfect chase, ignores the task") == [100.0, 0.0, 100.0]
    rand = windows("baseline: random action")
    assert all(22.0 < w < 28.0 for w in rand) and 23.5 < np.mean(rand) < 26.5
    late1 = windows("baseline: perfect policy, 1 step late")
    late2 = windows("baseline: perfect policy, 2 steps late")
    for w in (0, 2):  # chase: acting late, the agent oscillates around the target
        assert 35.0 < late1[w] < 60.0 and 25.0 < late2[w] < late1[w]
    assert late1[1] > 90.0  # avoid: pinned to a wall, the late action is still right


def test_the_summary_reads_the_switches():
    correct = np.zeros(10 * 4, bool)
    correct[8:12] = True  # window 3 (index 2) is perfect
    correct[28:32] = True  # window 8 (index 7)
    got = ca.summary(correct, 4, (10, 24))  # switches inside windows 3 and 7
    assert got["windows"][2] == 100.0 and got["average"] == 20.0
    first, second = got["switches"]
    assert first == {"step": 10, "before": 0.0, "after": 100.0, "windows_to_50": 0}
    assert second == {"step": 24, "before": 0.0, "after": 0.0, "windows_to_50": 1}
    assert ca.summary(np.zeros(40, bool), 4, (10, 24))["switches"][1]["windows_to_50"] is None


def test_a_quick_run_of_every_arm_reports_and_repeats(tmp_path, capsys):
    out = tmp_path / "b6.json"
    assert ca.main(["--quick", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    per_seed = {r["arm"]: r for r in rows if r["seed"] == 0}
    assert set(per_seed) == set(ca.LEARNERS) | set(ca.POLICIES)
    for arm, (_, _, delay) in ca.LEARNERS.items():
        row = per_seed[arm]
        assert len(row["windows"]) == 3 and all(0.0 <= w <= 100.0 for w in row["windows"])
        assert row["samples_learned"] == 900 and row["delay"] == delay  # equal sample counts
    assert per_seed["baseline: perfect policy"]["windows"] == [100.0] * 3
    summaries = [r for r in rows if r["seed"] is None]
    assert len(summaries) == len(per_seed) and all(r["seeds"] == 1 for r in summaries)
    table = capsys.readouterr().out
    assert "| tween, delayed | 2 |" in table and "| baseline: perfect policy | 0 | 100 |" in table
    task = ca.tasks(900, (300, 600))
    again = ca.run("tween, delayed", 0, task, 300, (300, 600))
    assert again == per_seed["tween, delayed"]  # the same seed, the same run
