"""Measured encode times and the expected-time estimates shown before a slow model runs."""

import threading

import pytest

from workbench.compare.timings import EncodeTimings, encoder_cost


def test_nothing_measured_says_so():
    timings = EncodeTimings()
    estimate = timings.estimate("sam-vit-h")
    assert estimate.seconds is None and estimate.basis == "none" and not estimate.slow
    assert estimate.text() == "no measurement yet"


def test_own_measurement_is_the_median_of_recent_ones():
    timings = EncodeTimings(keep=3)
    for seconds in (50.0, 12.0, 14.0, 13.0):  # the first one drops out of the window
        timings.record("sam-vit-b", seconds)
    estimate = timings.estimate("sam-vit-b")
    assert estimate.basis == "measured" and estimate.seconds == 13.0
    assert estimate.slow
    assert estimate.text() == "about 13 s (measured here)"
    timings.record("sam-vit-b", 0.0)  # not a measurement
    assert timings.measured("sam-vit-b") == 13.0


def test_estimate_scales_by_encoder_cost_within_the_family():
    timings = EncodeTimings()
    timings.record("sam-vit-b", 14.0)
    estimate = timings.estimate("sam-vit-h")
    assert estimate.basis == "scaled" and estimate.reference == "sam-vit-b"
    assert not estimate.rough
    assert estimate.seconds == pytest.approx(14.0 * encoder_cost("sam-vit-h")[1] / 486.0)
    assert estimate.text("SAM ViT-B") == (
        "roughly 86 s (a guess: not measured here yet; scaled from SAM ViT-B's time by encoder "
        "cost)")


def test_same_family_reference_is_preferred_and_cross_family_is_rough():
    timings = EncodeTimings()
    timings.record("sam-vit-b", 14.0)
    tiny = timings.estimate("sam2.1-tiny")
    assert tiny.reference == "sam-vit-b" and tiny.rough
    assert tiny.text().startswith("roughly ")
    timings.record("sam2.1-large", 13.5)
    tiny = timings.estimate("sam2.1-tiny")
    assert tiny.reference == "sam2.1-large" and not tiny.rough
    assert tiny.seconds == pytest.approx(13.5 * 146.0 / 911.0)


def test_models_outside_the_catalogue_need_their_own_measurement():
    timings = EncodeTimings()
    timings.record("sam-vit-b", 14.0)
    assert timings.estimate("test-sam1-small").basis == "none"
    timings.record("test-sam1-small", 0.4)
    assert timings.estimate("test-sam1-small").text() == "about 400 ms (measured here)"


def test_long_times_read_in_minutes():
    timings = EncodeTimings()
    timings.record("sam-vit-h", 150.0)
    assert timings.estimate("sam-vit-h").text() == "about 2 min 30 s (measured here)"


def test_recording_from_threads_keeps_every_model():
    timings = EncodeTimings(keep=1000)
    workers = [
        threading.Thread(target=lambda m=m: [timings.record(m, 1.0) for _ in range(200)])
        for m in ("a", "b", "c", "d")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert timings.snapshot() == {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}
