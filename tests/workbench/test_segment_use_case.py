"""The one segment use case, its policies, the one ``Limits`` value and the one error mapping,
unit-tested on a real ``AppContext`` with GrabCut (no weights) and a fake backend."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sam_backends import (
    CheckpointMissingError,
    ImageError,
    Prediction,
    PromptError,
    Prompts,
    UnknownModelError,
)
from sam_backends.errors import UnsupportedPromptError
from sam_backends.prompts.prompt_parsing import DEFAULT_MAX_POINTS, too_many_points_message
from sam_backends.registry import Capabilities
from workbench.config import AppConfig
from workbench.context import AppContext
from workbench.errors import Failure, Refusal, failure_of
from workbench.lanes import RequestTimeoutError, ServerBusyError
from workbench.limits import Limits
from workbench.segment import use_case
from workbench.segment.policy import Policy, predict
from workbench.segment.use_case import Hooks, SegmentRequest
from workbench.services import MAX_DETECTORS

IMAGE = np.zeros((40, 60, 3), np.uint8)


@pytest.fixture()
def ctx(tmp_path):
    context = AppContext(AppConfig(models=("grabcut",), default_model="grabcut",
                                   checkpoint_dir=tmp_path, examples_dir=None, max_points=3,
                                   temp_dir=tmp_path))
    yield context
    context.close()


class FakeBackend:
    """Records the prompts it is asked; one or three masks as asked."""

    model_id = "fake"

    def __init__(self, score: float = 0.9, caps: Capabilities = Capabilities()) -> None:
        self.spec = SimpleNamespace(capabilities=caps)
        self.asked: list[Prompts] = []
        self.score = score

    def predict(self, embedding, prompts: Prompts) -> Prediction:
        self.asked.append(prompts)
        count = 3 if prompts.multimask else 1
        masks = np.zeros((count, 40, 60), bool)
        return Prediction.from_masks(masks, np.full(count, self.score),
                                     np.zeros((count, 256, 256), np.float32), 0.0)


def test_limits_are_built_once_from_the_flags_and_refuse_with_the_engines_words(ctx):
    assert ctx.limits == Limits(max_points=3)
    assert Limits().max_points == DEFAULT_MAX_POINTS
    assert ctx.limits.prompt_limits().max_points == 3
    ctx.limits.check_points(3)
    with pytest.raises(Refusal) as info:
        ctx.limits.check_points(4, "objects.0.points")
    failure = info.value.failure
    assert (failure.status, failure.code, failure.field) == (422, "too_many_points",
                                                             "objects.0.points")
    assert failure.message == too_many_points_message(4, 3)
    with pytest.raises(ValueError):
        Limits(max_points=0)


def test_the_use_case_checks_model_cap_capabilities_and_image_before_any_work(ctx):
    def refusal(request: SegmentRequest) -> Failure:
        with pytest.raises(Refusal) as info:
            use_case.segment(ctx, request, ctx.limits, Policy.SINGLE)
        return info.value.failure

    assert refusal(SegmentRequest(IMAGE, (Prompts(box=(1, 1, 9, 9)),), "nope")).code == \
        "unknown_model"
    many = Prompts(points=[(1, 1)] * 4, labels=[1] * 4)
    assert refusal(SegmentRequest(IMAGE, (many,))).field == "objects.0.points"
    outside = refusal(SegmentRequest(IMAGE, (Prompts(box=(1, 1, 9, 9)),
                                             Prompts(points=[(500, 5)], labels=[1]))))
    assert (outside.code, outside.field) == ("bad_prompt", "objects.1")
    assert outside.message.startswith("Object 1:")
    result = use_case.segment(ctx, SegmentRequest(IMAGE, (Prompts(box=(5, 5, 30, 20)),)),
                              ctx.limits, Policy.SINGLE)
    assert result.model_id == "grabcut" and len(result.predictions) == 1


def test_hooks_run_between_steps_and_can_stop_the_work(ctx):
    seen, fractions = [], []
    request = SegmentRequest(IMAGE, (Prompts(box=(5, 5, 30, 20)), Prompts(box=(1, 1, 9, 9))))
    use_case.segment(ctx, request, ctx.limits, Policy.SINGLE,
                     Hooks(between=seen.append, progress=fractions.append))
    assert seen == ["loading the model", "encoding the image", "segmenting object 0",
                    "segmenting object 1"]
    assert fractions == [0.5, 0.75, 1.0]

    def stop(step: str) -> None:
        raise RequestTimeoutError(f"too late ({step})")

    with pytest.raises(RequestTimeoutError):
        use_case.segment(ctx, request, ctx.limits, Policy.SINGLE, Hooks(between=stop))


def test_decodes_run_on_one_thread_while_an_encode_runs_and_on_all_cores_otherwise(ctx):
    """The app's thread policy (``workbench.threads``) around the decodes of a request: one
    thread while the encoder lane is busy, the thread's cores back afterwards."""
    from workbench.threads import ThreadPolicy

    limits_set = []
    ctx.threads = ThreadPolicy(2, ctx._heavy_running, None,
                               limit=lambda n: limits_set.append(n) or True)
    request = SegmentRequest(IMAGE, (Prompts(box=(5, 5, 30, 20)),))
    use_case.segment(ctx, request, ctx.limits, Policy.SINGLE)
    assert limits_set == []  # quiet: nothing changed
    with ctx.encoder_lane.admit():  # another user's encode is running
        use_case.segment(ctx, request, ctx.limits, Policy.SINGLE)
    assert limits_set == [1, 2]


def test_policies_interactive_asks_three_for_a_lone_point_single_asks_what_was_asked():
    lone = Prompts(points=[(5, 5)], labels=[1])
    backend = FakeBackend()
    assert predict(backend, None, lone, Policy.INTERACTIVE).count == 3
    assert predict(backend, None, lone, Policy.SINGLE).count == 1
    two = Prompts(points=[(5, 5), (9, 9)], labels=[1, 0])
    assert predict(backend, None, two, Policy.INTERACTIVE).count == 1
    unsure = FakeBackend(score=0.1)
    assert predict(unsure, None, two, Policy.INTERACTIVE).count == 3  # asked again
    assert [p.multimask for p in unsure.asked] == [False, True]
    assert predict(unsure, None, two, Policy.SINGLE).count == 1


def test_an_unsure_refinement_is_one_call_to_a_backend_that_can_answer_both():
    """A ``Backend`` is asked once for "one mask, or three when unsure" (the fast SAM backends
    answer it from one decode: ``tests/engine/test_fast_path.py``), with the bar and the
    previous mask's logits."""
    from sam_backends import Backend
    from workbench.segment.policy import UNSURE_SCORE

    class OneCall(Backend):
        spec = SimpleNamespace(capabilities=Capabilities(), model_id="fake")
        device, precision = "cpu", "fp32"

        def __init__(self) -> None:
            self.calls: list[tuple[Prompts, float]] = []

        def encode(self, image):
            raise AssertionError("not used")

        def predict(self, embedding, prompts):
            raise AssertionError("asked through predict_single_or_candidates")

        def predict_single_or_candidates(self, embedding, prompts, unsure_below):
            self.calls.append((prompts, unsure_below))
            return FakeBackend(score=0.1).predict(embedding, prompts.__class__(
                points=prompts.points, labels=prompts.labels, multimask=True))

    backend = OneCall()
    logits = np.ones((1, 256, 256), np.float32)
    previous = SimpleNamespace(model_id="fake", logits=logits)
    two = Prompts(points=[(5, 5), (9, 9)], labels=[1, 0])
    assert predict(backend, None, two, Policy.INTERACTIVE, previous).count == 3
    (asked, bar), = backend.calls
    assert bar == UNSURE_SCORE and not asked.multimask and asked.mask_input is logits


@pytest.mark.parametrize("exc, status, code, field", [
    (ServerBusyError("busy", 7), 503, "busy", None),
    (RequestTimeoutError("late"), 504, "timeout", None),
    (UnsupportedPromptError("no points"), 422, "unsupported", "objects"),
    (PromptError("outside"), 422, "bad_prompt", "objects"),
    (ImageError("not an image"), 422, "bad_image", "image"),
    (UnknownModelError("which?"), 422, "unknown_model", "model"),
    (CheckpointMissingError("no weights at /srv/x.pt"), 503, "model_unavailable", "model"),
    (MemoryError(), 507, "out_of_memory", None),
    (RuntimeError("secret /srv/app.py"), 500, "internal", None),
])
def test_every_failure_maps_once_to_status_code_message_field(exc, status, code, field):
    failure = failure_of(exc)
    assert (failure.status, failure.code, failure.field) == (status, code, field)
    assert failure.message and "/srv" not in failure.message
    if code == "busy":
        assert failure.retry_after_s == 7
    assert failure_of(Refusal.of(failure)) == failure


def test_the_five_error_classes_share_one_base():
    from server.rest.images import FetchError
    from server.rest.jobs import JobNotFound
    from server.rest.service import RestError
    from server.security.auth import AuthError
    from workbench.segment.live import LiveError

    for error in (LiveError(409, "changed", "again", "Changed"),
                  RestError(422, "bad_image", "send a PNG", "image"),
                  AuthError(401, "unauthorized", "send a key"),
                  JobNotFound("no such job"),
                  FetchError("url_refused", "not that host")):
        assert isinstance(error, Refusal)
        failure = error.failure
        assert failure.status and failure.code and failure.message == str(error)


def test_services_are_one_typed_bounded_registry_per_app(ctx, tmp_path):
    other = AppContext(AppConfig(models=("grabcut",), default_model="grabcut",
                                 checkpoint_dir=tmp_path, examples_dir=None,
                                 temp_dir=tmp_path))
    try:
        assert ctx.services.video is ctx.services.video
        assert ctx.services.video is not other.services.video
        loads = []
        for key in range(MAX_DETECTORS + 1):
            ctx.services.detector(key, lambda key=key: loads.append(key) or f"det{key}")
        assert ctx.services.detector(MAX_DETECTORS, lambda: "again") == f"det{MAX_DETECTORS}"
        assert len(ctx.services.detectors) == MAX_DETECTORS and len(other.services.detectors) == 0
        assert "video_services" not in vars(ctx)
    finally:
        other.close()
