"""The app's shared services beyond the image models: one typed, bounded registry on the context.

Why a registry: the OWLv2 detectors and the video trackers are the same for every user (weights
only), take seconds and hundreds of MB to load, and were kept apart from ``AppContext``: a
module-level detector pool (shared by every app in the process, tests included) and a
``video_services`` attribute set on the context from outside. ``AppContext.services`` holds
them now, one per app, each bounded, each behind a typed accessor:

* ``detector(key, load)``: the OWLv2 detector for a configuration key (checkpoint folder,
  device, precision), at most ``MAX_DETECTORS`` loaded (``detector_cache.BoundedDetectorCache``:
  least recently used dropped, one load per key).
* ``video``: the ``workbench.video.services.VideoServices`` of this app (trackers, at most
  ``MAX_TRACKERS`` loaded; the tracking lane; the video limits), made on first use.
* ``prefetcher``: the ``workbench.projects.prefetch.Prefetcher`` of this app (one background
  thread encoding the images people will open next, at the lowest priority; at most
  ``MAX_CLIENTS`` wishes of ``MAX_PATHS`` images), made on first use.

Per-user data never lives here. ``close()`` (run by ``AppContext.close``) frees what is loaded.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Hashable

from workbench.proposals.detector_cache import BoundedDetectorCache
from workbench.temp_root import KEPT_FOLDER

if TYPE_CHECKING:
    from workbench.context import AppContext
    from workbench.labeling.page_runs import PageRuns
    from workbench.projects.prefetch import Prefetcher
    from workbench.projects.service import ProjectsService
    from workbench.video.services import VideoServices

MAX_DETECTORS = 2  # a process serves one configuration: in practice one entry


class Services:
    """See the module docstring."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._video: VideoServices | None = None
        self._projects: ProjectsService | None = None
        self._prefetcher: Prefetcher | None = None
        self._label_runs: PageRuns | None = None
        self.detectors = BoundedDetectorCache(max_entries=MAX_DETECTORS)

    def detector(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The detector loaded for ``key`` (``load()`` runs once, on first use)."""
        return self.detectors.get(key, load)

    @property
    def video(self) -> VideoServices:
        """The app's video services (made on first use; imports the video package then)."""
        with self._lock:
            if self._video is None:
                from workbench.video.services import VideoServices

                self._video = VideoServices(self._ctx)
            return self._video

    @property
    def projects(self) -> ProjectsService:
        """The app's projects (``--project``, ``--projects-root``, per-session ones); made on
        first use, which opens the operator's project (``app.main`` does it at start-up, so a
        locked or damaged project stops the start with its message)."""
        with self._lock:
            if self._projects is None:
                from workbench.projects.service import ProjectsService

                config = self._ctx.config
                self._projects = ProjectsService(config.project_dir, config.projects_root,
                                                 self._ctx.temp.path / KEPT_FOLDER)
                if config.project_dir is not None and config.project_cache_bytes > 0:
                    from workbench.projects.prefetch import project_embedding_store

                    # One project for the whole app: its embeddings may live in its folder.
                    self._ctx.attach_disk_embeddings(project_embedding_store(
                        config.project_dir, config.project_cache_bytes))
            return self._projects

    @property
    def prefetcher(self) -> Prefetcher:
        """The app's background encoder of the next images (made on first use)."""
        with self._lock:
            if self._prefetcher is None:
                from workbench.projects.prefetch import Prefetcher

                self._prefetcher = Prefetcher(self._ctx)
            return self._prefetcher

    @property
    def label_runs(self) -> PageRuns:
        """Auto-labelling runs started from the page (made on first use)."""
        with self._lock:
            if self._label_runs is None:
                from workbench.labeling.page_runs import PageRuns

                self._label_runs = PageRuns(self._ctx)
            return self._label_runs

    def close(self) -> None:
        """Stop the background encoder and the page's labelling runs; drop the loaded
        detectors and trackers; close the projects (at shutdown)."""
        with self._lock:
            prefetcher, self._prefetcher = self._prefetcher, None
            runs, self._label_runs = self._label_runs, None
        if runs is not None:
            runs.close()
        if prefetcher is not None:
            prefetcher.close()
        self.detectors.clear()
        with self._lock:
            video, self._video = self._video, None
            projects, self._projects = self._projects, None
        if projects is not None:
            projects.close()
        if video is not None:
            video.trackers.clear()
