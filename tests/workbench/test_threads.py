"""The decode thread policy: all cores on a quiet machine, one thread when something competes.

``CpuLoad`` is fed fake ``/proc`` readings; ``ThreadPolicy`` is checked with fake counts and
then for real: inside ``for_decode`` PyTorch's thread count of the calling thread changes and
comes back afterwards, while another thread keeps its own.
"""

from __future__ import annotations

import threading

import pytest

from workbench.threads import BUSY_CORES, CpuLoad, CpuSample, ThreadPolicy, _read_sample


class FakeProc:
    """Readings the test writes: cumulative busy seconds of the machine and of this process."""

    def __init__(self) -> None:
        self.machine = 0.0
        self.process = 0.0
        self.at = 0.0

    def read(self) -> CpuSample:
        return CpuSample(self.machine, self.process, self.at)


@pytest.fixture()
def proc(monkeypatch):
    fake = FakeProc()
    monkeypatch.setattr("workbench.threads.time.monotonic", lambda: fake.at)
    return fake


def test_other_processes_load_is_the_machines_busy_time_minus_ours(proc):
    load = CpuLoad(proc.read, sample_s=0.25)
    proc.at, proc.machine, proc.process = 1.0, 1.5, 0.5  # 1 s: 1.5 cores busy, 0.5 ours
    assert load.others_busy_cores() == pytest.approx(1.0)
    # asked again within the window: the same answer, /proc not read
    proc.machine = 99.0
    proc.at = 1.1
    assert load.others_busy_cores() == pytest.approx(1.0)
    # the next window (from the reading at 1.0 s): only this process worked
    proc.at, proc.machine, proc.process = 2.0, 2.3, 1.3
    assert load.others_busy_cores() == pytest.approx(0.0)
    # and the one after: another process kept a whole core busy
    proc.at, proc.machine, proc.process = 3.0, 3.3, 1.3
    assert load.others_busy_cores() == pytest.approx(1.0)


def test_missing_proc_reads_as_quiet():
    load = CpuLoad(lambda: None)
    assert load.others_busy_cores() == 0.0


def test_the_real_proc_files_parse_where_they_exist():
    sample = _read_sample()
    if sample is None:
        pytest.skip("no /proc on this system")
    assert sample.machine_busy_s > 0 and sample.process_s >= 0


class FixedLoad:
    def __init__(self, cores: float) -> None:
        self.cores = cores

    def others_busy_cores(self) -> float:
        return self.cores


@pytest.mark.parametrize(("cores", "heavy", "others", "expected"), [
    (2, 0, 0.0, 2),              # quiet: every core
    (2, 1, 0.0, 1),              # an encode of this app runs
    (2, 0, BUSY_CORES, 1),       # another process holds half a core or more
    (2, 0, BUSY_CORES / 2, 2),   # a little background noise does not count
    (8, 2, 0.0, 1),
    (1, 0, 0.0, 1),
])
def test_decode_threads(cores, heavy, others, expected):
    policy = ThreadPolicy(cores, lambda: heavy, FixedLoad(others), limit=lambda n: True)
    assert policy.decode_threads() == expected


def test_for_decode_limits_and_restores_only_when_needed():
    calls = []
    heavy = [1]
    policy = ThreadPolicy(4, lambda: heavy[0], None, limit=lambda n: calls.append(n) or True)
    with policy.for_decode() as count:
        assert count == 1 and calls == [1]
    assert calls == [1, 4]  # all cores back afterwards
    heavy[0] = 0
    with policy.for_decode() as count:
        assert count == 4
    assert calls == [1, 4]  # nothing to change on a quiet machine


def test_for_decode_restores_after_an_error():
    calls = []
    policy = ThreadPolicy(2, lambda: 1, None, limit=lambda n: calls.append(n) or True)
    with pytest.raises(RuntimeError), policy.for_decode():
        raise RuntimeError("decode failed")
    assert calls == [1, 2]


def per_thread_torch():
    """(torch, its thread count), or a skip where per-thread counts cannot be shown."""
    torch = pytest.importorskip("torch")
    if "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info():
        pytest.skip("PyTorch here does not run on OpenMP: per-thread counts do not apply")
    cores = torch.get_num_threads()
    if cores < 2:
        pytest.skip("PyTorch runs on one thread here: nothing to limit")
    return torch, cores


def test_for_decode_changes_this_threads_pytorch_threads_only():
    torch, cores = per_thread_torch()
    policy = ThreadPolicy(cores, lambda: 1, None)
    seen = {}

    def other_thread(started: threading.Event, done: threading.Event) -> None:
        torch.ones(64).sum()
        seen["other_before"] = torch.get_num_threads()
        started.set()
        done.wait(10)
        seen["other"] = torch.get_num_threads()

    started, done = threading.Event(), threading.Event()

    def decoding() -> None:
        torch.ones(64).sum()
        with policy.for_decode():
            seen["inside"] = torch.get_num_threads()
        seen["after"] = torch.get_num_threads()

    worker = threading.Thread(target=other_thread, args=(started, done))
    worker.start()
    started.wait(10)
    decoder = threading.Thread(target=decoding)
    decoder.start()
    decoder.join(10)
    done.set()
    worker.join(10)
    assert seen["inside"] == 1 and seen["after"] == cores
    assert seen["other"] == seen["other_before"]  # another thread's count is its own


def test_the_apps_encodes_give_way_to_its_decodes_which_keep_every_core(tmp_path, sam2_small):
    """An encode of the app runs inside ``give_way.giving_way()``: while it runs, a decode is
    urgent work (it pauses the encode) and is not limited to one thread on its account; a video
    frame or another heavy job that does not give way still counts."""
    from sam_backends.testing.random_models import synthetic_image
    from workbench.config import AppConfig, ExtraModel
    from workbench.context import AppContext

    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut",
                               extra_models=(ExtraModel(sam2_small.spec, sam2_small.path),),
                               device="cpu", precision="fp32", examples_dir=None,
                               checkpoint_dir=tmp_path / "none", temp_dir=tmp_path))
    try:
        limits = []
        ctx.threads = ThreadPolicy(2, ctx._heavy_running, None,
                                   limit=lambda n: limits.append(n) or True,
                                   give_way=ctx.give_way)
        model = sam2_small.spec.model_id
        ctx.backend(model)  # loaded before the clock starts
        ctx.give_way.grace_s = ctx.give_way.max_pause_s = 60.0  # pause until the click ends
        seen = {}
        with ctx.threads.for_decode() as threads:  # a click in flight: the encode pauses
            seen["quiet"] = threads
            worker = threading.Thread(target=lambda: seen.setdefault(
                "encoded", ctx.encode(model, synthetic_image(64, 64, seed=1))))
            worker.start()
            for _ in range(200):
                if ctx.give_way.giving_way_now and ctx.encoder_lane.running:
                    break
                threading.Event().wait(0.01)
            assert ctx.give_way.giving_way_now == 1 and ctx.encoder_lane.running == 1
            assert ctx.give_way.urgent_running == 1 and "encoded" not in seen
            assert ctx._heavy_running() == 0 and ctx.threads.decode_threads() == 2
        worker.join(timeout=60)
        assert "encoded" in seen and not seen["encoded"].cached
        assert seen["quiet"] == 2 and limits == []
        with ctx.encoder_lane.admit():  # heavy work that does not give way (a video frame)
            assert ctx._heavy_running() == 1 and ctx.threads.decode_threads() == 1
    finally:
        ctx.close()


def test_a_video_frame_on_the_cpu_gives_way_like_an_encode(tmp_path):
    """Each tracked frame (``VideoServices.frame_step``) runs in the encoder lane and gives way
    to decodes on the CPU, so a click during tracking keeps every core."""
    from workbench.config import AppConfig
    from workbench.context import AppContext

    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut", device="cpu",
                               examples_dir=None, checkpoint_dir=tmp_path / "none",
                               temp_dir=tmp_path))
    try:
        with ctx.services.video.frame_step():
            assert ctx.encoder_lane.running == 1 and ctx.give_way.giving_way_now == 1
            assert ctx._heavy_running() == 0
        assert ctx.give_way.giving_way_now == 0 and ctx.encoder_lane.running == 0
        ctx.zerogpu = True  # elsewhere (here: ZeroGPU's GPU worker) a frame does not give way
        with ctx.services.video.frame_step():
            assert ctx.give_way.giving_way_now == 0 and ctx._heavy_running() == 1
    finally:
        ctx.close()


# --- where the work runs: one decode thread, heavy passes on threads that end -------------


def test_in_own_thread_returns_the_result_raises_the_error_and_the_thread_ends():
    import contextvars

    from workbench.threads import in_own_thread

    request = contextvars.ContextVar("request", default="none")
    request.set("visitor-7")
    ran_on = []

    def work():
        ran_on.append(threading.current_thread())
        return request.get()  # the caller's context travels with the work

    assert in_own_thread(work, "samwb-test") == "visitor-7"
    assert ran_on[0] is not threading.current_thread() and ran_on[0].name == "samwb-test"
    assert not ran_on[0].is_alive()  # its OpenMP pool, if any, went with it

    class Refused(Exception):
        pass

    def fail():
        raise Refused("no")

    with pytest.raises(Refused, match="no"):
        in_own_thread(fail)


def test_the_decode_thread_runs_every_call_on_one_thread_in_order_and_nests():
    from workbench.threads import DecodeThread

    decoder = DecodeThread("samwb-test-decode")
    try:
        threads, order = set(), []

        def work(i):
            threads.add(threading.get_ident())
            order.append(i)
            return i * i

        callers = [threading.Thread(target=lambda i=i: decoder.run(lambda: work(i)))
                   for i in range(4)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(10)
        assert sorted(order) == [0, 1, 2, 3] and len(threads) == 1
        assert threading.get_ident() not in threads
        # a call made on the decode thread itself runs at once instead of waiting for itself
        assert decoder.run(lambda: decoder.run(lambda: work(9))) == 81
        with pytest.raises(ZeroDivisionError):
            decoder.run(lambda: 1 / 0)
        assert decoder.run(lambda: "still serving") == "still serving"
    finally:
        decoder.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        decoder.run(lambda: None)


def test_policy_decode_runs_cpu_work_on_the_decode_thread_with_its_thread_count():
    from sam_backends.speed.give_way import GiveWay
    from workbench.threads import DecodeThread

    decoder = DecodeThread()
    give_way = GiveWay()
    limits = []
    heavy = [0]
    policy = ThreadPolicy(2, lambda: heavy[0], None,
                          limit=lambda n: limits.append((threading.get_ident(), n)) or True,
                          give_way=give_way, decoder=decoder)
    try:
        seen = {}

        def work():
            seen["thread"] = threading.get_ident()
            seen["urgent"] = give_way.urgent_running
            return "mask"

        assert policy.decode(work) == "mask"
        decode_thread = seen["thread"]
        assert decode_thread != threading.get_ident() and seen["urgent"] == 1
        assert limits == [] and give_way.urgent_running == 0
        heavy[0] = 1  # a many-object run: this decode gets one thread, on the decode thread
        assert policy.decode(work) == "mask" and seen["thread"] == decode_thread
        assert limits == [(decode_thread, 1), (decode_thread, 2)]
        # a model on an accelerator decodes in the calling thread
        assert policy.decode(work, device="cuda:0") == "mask"
        assert seen["thread"] == threading.get_ident()
    finally:
        decoder.close()


def test_the_app_decodes_on_one_thread_and_encodes_and_loads_on_threads_that_end(
        tmp_path, sam2_small, monkeypatch):
    """Through the app's one use case: every click's decode runs on the same long-lived thread
    (not the caller's), and the encode and the model load ran on threads that are gone."""
    from sam_backends import Prompts
    from sam_backends.testing.random_models import synthetic_image
    from workbench.config import AppConfig, ExtraModel
    from workbench.context import AppContext
    from workbench.segment import use_case
    from workbench.segment.policy import Policy
    from workbench.segment.use_case import SegmentRequest

    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut",
                               extra_models=(ExtraModel(sam2_small.spec, sam2_small.path),),
                               device="cpu", precision="fp32", examples_dir=None,
                               checkpoint_dir=tmp_path / "none", temp_dir=tmp_path))
    try:
        import workbench.context as context_module

        seen = {"encode": [], "predict": [], "load": []}
        real_create = context_module.create_backend

        def create_backend(*args, **kwargs):
            seen["load"].append(threading.current_thread())
            return real_create(*args, **kwargs)

        monkeypatch.setattr(context_module, "create_backend", create_backend)
        model = sam2_small.spec.model_id
        backend = ctx.backend(model)
        assert [t.name for t in seen["load"]] == ["samwb-load"]
        assert not seen["load"][0].is_alive()
        real_encode, real_predict = backend.encode, backend.predict

        def encode(image):
            seen["encode"].append(threading.current_thread())
            return real_encode(image)

        def predict(embedding, prompts):
            seen["predict"].append(threading.current_thread())
            return real_predict(embedding, prompts)

        backend.encode, backend.predict = encode, predict
        image = synthetic_image(64, 64, seed=3)
        request = SegmentRequest(model_id=model, image=image, objects=(
            Prompts(points=((20.0, 20.0),), labels=(1,)), Prompts(box=(5.0, 5.0, 40.0, 50.0))))
        first = use_case.segment(ctx, request, ctx.limits, Policy.SINGLE)
        again = use_case.segment(ctx, request, ctx.limits, Policy.SINGLE)
        assert len(first.predictions) == 2 and again.encode_cached
        direct = real_predict(ctx.encode(model, image).embedding, request.objects[1])
        assert (first.predictions[1].masks == direct.masks).all()  # the same masks
        decoders = {t.ident for t in seen["predict"]}
        assert len(seen["predict"]) >= 4 and len(decoders) == 1
        assert threading.get_ident() not in decoders and seen["predict"][0].is_alive()
        assert len(seen["encode"]) == 1 and not seen["encode"][0].is_alive()
        assert seen["encode"][0].name == "samwb-encode"
    finally:
        ctx.close()


def test_this_thread_on_limits_the_body_then_restores_only_in_its_own_thread():
    """``accel.this_thread_on``: the body's thread on the count, then its count before; a
    generator holding it and closed in another thread leaves that thread's count alone."""
    from sam_backends.speed.accel import mkl_threads_here, this_thread_on

    torch, cores = per_thread_torch()
    mkl = mkl_threads_here()  # MKL's own count (the fp32 products), None without MKL
    with this_thread_on(1):
        assert torch.get_num_threads() == 1
        assert mkl_threads_here() in (None, 1)  # lowered too, or a product would use them all
    assert torch.get_num_threads() == cores and mkl_threads_here() == mkl
    with this_thread_on(None):
        assert torch.get_num_threads() == cores

    def held():
        with this_thread_on(1):
            yield torch.get_num_threads()

    inside = {}

    def start() -> None:
        inside["gen"] = held()
        inside["count"] = next(inside["gen"])

    starter = threading.Thread(target=start)
    starter.start()
    starter.join(10)
    assert inside["count"] == 1
    with this_thread_on(1):  # closed here, in a thread on 1: the starter's "before" (all
        inside.pop("gen").close()  # cores) must not be put on this thread
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == cores
