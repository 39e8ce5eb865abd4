"""Estimates from this run's own pace, measured history, or a guess worded as one (a fake clock:
no sleeping, no timing thresholds)."""

import pytest

from workbench.estimates import (
    PaceHistory,
    RunEstimate,
    duration_text,
    guess_text,
    measured_text,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_durations_read_at_a_glance():
    assert duration_text(0.4) == "400 ms"
    assert duration_text(2.54) == "2.5 s"
    assert duration_text(40.2) == "40 s"
    assert duration_text(125) == "2 min 05 s"
    assert duration_text(3780) == "1 h 03 min"
    assert measured_text(14) == "about 14 s (measured here)"
    assert guess_text(40) == "roughly 40 s (a guess: not measured here yet)"


def test_nothing_is_claimed_before_the_first_frame():
    clock = FakeClock()
    run = RunEstimate(50, clock=clock)
    assert run.seconds_left() is None
    assert run.text() == "time left: known after the first frames"


def test_the_remaining_time_is_this_runs_pace_times_the_frames_left_updated_each_frame():
    clock = FakeClock()
    run = RunEstimate(50, clock=clock)
    clock.tick(30.0)  # loading the model: not a frame
    run.start()
    clock.tick(0.1)  # the prompted frame comes back at once
    run.step()
    assert run.seconds_left() == pytest.approx(0.1 * 49)
    for _ in range(9):  # then each frame takes 2 s: the estimate follows within a few frames
        clock.tick(2.0)
        run.step()
    assert run.done == 10 and run.pace == 2.0
    assert run.seconds_left() == 80.0
    assert run.text() == "about 80 s left (2.0 s a frame, measured in this run)"
    for _ in range(40):
        clock.tick(2.0)
        run.step()
    assert run.text() == ""


def test_a_pace_measured_here_before_is_used_until_this_run_has_its_own():
    history = PaceHistory()
    assert history.pace("sam2.1-tiny") is None
    history.record("sam2.1-tiny", 40.0, 20)
    history.record("sam2.1-tiny", 0.0, 0)  # a run that did nothing is no measurement
    clock = FakeClock()
    run = RunEstimate(30, history.pace("sam2.1-tiny"), clock=clock)
    assert run.text() == "about 60 s left (measured here before)"
    clock.tick(1.0)
    run.step()
    assert run.text() == "about 29 s left (1.0 s a frame, measured in this run)"


def test_a_guess_says_it_is_one():
    run = RunEstimate(10, 3.0, guess=True, clock=FakeClock())
    assert run.text() == "roughly 30 s left (a guess: not measured here yet)"


def test_a_comparison_counts_the_second_model_and_measures_it_afresh():
    clock = FakeClock()
    run = RunEstimate(20, clock=clock, later=10)  # two models, ten frames each
    for _ in range(4):
        clock.tick(1.0)
        run.step()
    # six frames of the first model at 1 s, ten of the second priced at the same pace: a guess
    assert run.seconds_left() == 16.0
    assert run.text() == "roughly 16 s left (a guess: not measured here yet)"
    for _ in range(6):
        clock.tick(1.0)
        run.step()
    clock.tick(20.0)  # loading the second model
    run.new_pace()
    assert run.text() == "roughly 10 s left (a guess: not measured here yet)"
    clock.tick(5.0)
    run.step()
    assert run.text() == "about 45 s left (5.0 s a frame, measured in this run)"


def test_the_second_models_measured_history_is_not_a_guess():
    clock = FakeClock()
    run = RunEstimate(4, clock=clock, later=2, later_pace=3.0)
    clock.tick(1.0)
    run.step()
    assert run.seconds_left() == 1.0 + 6.0
    assert run.text().startswith("about 7.0 s left")
    clock.tick(1.0)
    run.step()
    run.new_pace()
    assert run.text() == "about 6.0 s left (measured here before)"
