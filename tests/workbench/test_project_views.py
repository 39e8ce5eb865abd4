"""What the project views show (``workbench.projects.values``): paged lists with lazy
thumbnails that stay small on a 20,000-image project, the bar, the summary."""

from __future__ import annotations

import numpy as np
from project_files import make_images

from sam_backends.masks import encode_rle
from workbench.projects.model import StoredObject
from workbench.projects.service import ProjectsService
from workbench.projects.store import ProjectStore
from workbench.projects.values import (
    PAGE_SIZE,
    caption,
    class_choices,
    gallery_page,
    project_bar,
    summary,
)
from workbench.session import Session


def test_a_page_of_20000_images_makes_only_its_own_thumbnails(tmp_path):
    make_images(tmp_path, [f"d{i // 1000:02d}/img {i:05d}.png" for i in range(20_000)])
    with ProjectStore.open(tmp_path, create=True) as store:
        assert store.count() == 20_000
        first = gallery_page(store, 0, None, None)
        assert len(first.items) == PAGE_SIZE and first.pages == -(-20_000 // PAGE_SIZE)
        thumbs = [p for p in (tmp_path / ".samwb-cache").rglob("*.jpg")]
        assert len(thumbs) == PAGE_SIZE  # lazily: this page's, no others
        last = gallery_page(store, 10**9, None, None)  # clamped to the last page
        assert last.page == first.pages - 1 and len(last.items) == 20_000 % PAGE_SIZE
        assert last.label == f"Page {last.pages} of {last.pages} · 20,000 images"
        assert store.entry(last.image_ids[-1]).path == "d19/img 19999.png"


def test_filters_and_captions_follow_the_store(tmp_path):
    make_images(tmp_path, [f"img {i}.png" for i in range(5)])
    with ProjectStore.open(tmp_path, create=True) as store:
        ids = [e.image_id for e in store.page(0, 5)]
        klass = store.add_class("dog")
        mask = np.zeros((30, 40), bool)
        mask[5:15, 5:15] = True
        store.sync_objects(ids[1], [StoredObject(ids[1], 1, klass.class_id,
                                                 encode_rle(mask))], [])
        store.set_status(ids[1], "done")
        store.set_status(ids[2], "skipped")
        done = gallery_page(store, 0, "done", None)
        assert done.image_ids == (ids[1],) and done.items[0][1] == "✓ 1 · img 1.png"
        assert gallery_page(store, 0, None, klass.class_id).image_ids == (ids[1],)
        assert gallery_page(store, 0, "review", None).label == "No images match."
        assert "1 done, 1 skipped" in summary(store)
        assert caption(store.entry(ids[0])) == "○ img 0.png"


def test_the_bar_numbers_the_first_nine_classes(tmp_path):
    make_images(tmp_path, ["a.png", "b.png"])
    service = ProjectsService(tmp_path, None, tmp_path / ".t")
    try:
        store = service.shared
        for i in range(10):
            store.add_class(f"c{i}")
        choices = class_choices(store.classes())
        assert choices[0][0] == "1 · object" and choices[8][0] == "9 · c7"
        assert choices[9][0] == "c8"  # no key beyond 9
        session = Session("s", "m")
        assert not project_bar(session).visible
        second = store.page(0, 2)[1].image_id
        service.open_image(session, store, second, 10_000_000)
        bar = project_bar(session)
        assert bar.visible and "image 2 of 2" in bar.info and "`b.png`" in bar.info
        assert bar.status == "new" and bar.class_id == store.classes()[0].class_id
    finally:
        service.close()
