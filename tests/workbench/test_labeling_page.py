"""Auto-labelling from the page (``workbench.labeling.page_runs``): the app's own model, one
run per project, progress and Cancel."""

from __future__ import annotations

import pytest
from labeling_fixtures import make_boxes, make_project_images

from workbench.config import AppConfig, ExtraModel
from workbench.context import AppContext
from workbench.errors import UserError
from workbench.labeling import LabelRun
from workbench.labeling.page_runs import progress_text
from workbench.projects.store import ProjectStore


@pytest.fixture
def ctx(tmp_path, sam2_small):
    context = AppContext(AppConfig(
        models=("grabcut",), extra_models=(ExtraModel(sam2_small.spec, sam2_small.path),),
        default_model=sam2_small.spec.model_id, device="cpu", precision="fp32",
        checkpoint_dir=tmp_path / "none", examples_dir=None, temp_dir=tmp_path / "temp"))
    yield context
    context.close()


def test_a_page_run_labels_the_project_with_the_apps_model(ctx, sam2_small, tmp_path):
    names = make_project_images(tmp_path / "p", 3)
    boxes = make_boxes(tmp_path / "boxes", names)
    with ProjectStore.open(tmp_path / "p", create=True) as store:
        runs = ctx.services.label_runs
        assert runs.of(store) is None
        run = LabelRun(sam2_small.spec.model_id, "boxes", boxes=str(boxes))
        handle = runs.start(store, run)
        final = handle.wait(120)
        assert final.done == 3 and final.found == 6 and final.failed == 0
        assert progress_text(handle).text.startswith("✓ Done: 3 of 3 images · 6 objects")
        ids = [e.image_id for e in store.page(0, 3)]
        assert all(len(store.objects(i)) == 2 for i in ids)
        assert {store.entry(i).status for i in ids} == {"auto"}
        assert {c.name for c in store.classes()} >= {"car", "person"}
        again = runs.start(store, run).wait(120)  # the same run again: nothing to do
        assert again.total == 0 and again.skipped == 3
        assert all(len(store.objects(i)) == 2 for i in ids)
        assert runs.cancel(store) is False  # nothing running


def test_a_page_run_works_on_one_thread_and_leaves_the_apps_threads_alone(
        ctx, sam2_small, tmp_path, monkeypatch):
    """``PAGE_THREADS``: the run's own thread labels on one PyTorch thread (no second OpenMP
    pool in the app, one core left to the clicks), and neither this thread nor a thread
    started afterwards (the app's next encode) inherits it."""
    import threading

    import torch

    from workbench.labeling import per_image
    from workbench.labeling.page_runs import PAGE_THREADS

    seen = []
    label_image = per_image.label_image

    def counted(*args, **kwargs):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return label_image(*args, **kwargs)

    monkeypatch.setattr(per_image, "label_image", counted)
    before = torch.get_num_threads()
    names = make_project_images(tmp_path / "p", 2)
    boxes = make_boxes(tmp_path / "boxes", names)
    with ProjectStore.open(tmp_path / "p", create=True) as store:
        run = LabelRun(sam2_small.spec.model_id, "boxes", boxes=str(boxes))
        assert ctx.services.label_runs.start(store, run).wait(120).done == 2
    assert PAGE_THREADS == 1 and seen == [("label-run", 1)] * 2
    after = []
    fresh = threading.Thread(target=lambda: after.append(torch.get_num_threads()))
    fresh.start()
    fresh.join()
    assert torch.get_num_threads() == before and after == [before]
    if before == 1:
        pytest.skip("one core here: a one-thread run cannot be told apart")


def test_one_run_per_project_and_cancel_stops_it(ctx, sam2_small, tmp_path):
    names = make_project_images(tmp_path / "p", 10)
    boxes = make_boxes(tmp_path / "boxes", names)
    with ProjectStore.open(tmp_path / "p", create=True) as store:
        runs = ctx.services.label_runs
        run = LabelRun(sam2_small.spec.model_id, "boxes", boxes=str(boxes))
        handle = runs.start(store, run)
        with pytest.raises(UserError, match="already labelling"):
            runs.start(store, run)
        assert runs.cancel(store)
        final = handle.wait(120)
        assert final.cancelled and final.done < 10
        assert progress_text(handle).text.startswith("Cancelled")
        rest = runs.start(store, run).wait(120)  # goes on where it stopped
        assert rest.total == 10 - final.done


def test_an_unknown_model_is_refused_before_anything_runs(ctx, tmp_path):
    make_project_images(tmp_path / "p", 1)
    with ProjectStore.open(tmp_path / "p", create=True) as store:
        with pytest.raises(Exception, match="not-a-model"):
            ctx.services.label_runs.start(store, LabelRun("not-a-model", "everything"))
        assert ctx.services.label_runs.of(store) is None


def test_phrases_are_read_and_bounded_as_the_pages_text_prompt_reads_them():
    from workbench.labeling.spec import LabelRunError

    assert LabelRun("m", phrases="car, person;car ").phrases == ("car", "person")
    assert LabelRun("m", phrases=("red car", "bike, bus")).phrases == ("red car", "bike", "bus")
    with pytest.raises(LabelRunError, match="max_phrases"):
        LabelRun("m", phrases=", ".join(f"thing {i}" for i in range(40)))
    with pytest.raises(LabelRunError, match="max_phrase_chars"):
        LabelRun("m", phrases="x" * 200)
    with pytest.raises(LabelRunError, match="max_chars"):
        LabelRun("m", phrases="x" * 5000)
    assert LabelRun("m", mode="everything", phrases=()).phrases == ()
