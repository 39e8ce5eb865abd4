"""REST's stored images and files: each key has its own quota, so one key's uploads never push
out another key's; a full store refuses rather than evicting; a 404 says why."""

from __future__ import annotations

import numpy as np
import pytest

from server.rest.images import ImageStore, OwnedStore, StoreFullError, UnknownImageError
from server.rest.service import gone_message


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_over_its_quota_loses_only_its_own_oldest():
    store: OwnedStore[str] = OwnedStore(max_count=100, max_bytes=10_000, ttl_s=60, prefix="x_",
                                        per_key_count=2)
    mine = [store.put("alice", f"a{i}", 1) for i in range(2)]
    theirs = [store.put("bob", f"b{i}", 1) for i in range(5)]
    assert [store.get(i, "alice") for i in mine] == ["a0", "a1"]
    assert [store.get(i, "bob") for i in theirs[-2:]] == ["b3", "b4"]
    with pytest.raises(UnknownImageError) as gone:
        store.get(theirs[0], "bob")
    assert gone.value.reason == "replaced"


def test_a_key_over_its_bytes_loses_only_its_own():
    store: OwnedStore[str] = OwnedStore(max_count=100, max_bytes=10_000, ttl_s=60, prefix="x_",
                                        per_key_bytes=100)
    kept = store.put("alice", "small", 60)
    bob_first = store.put("bob", "big-1", 60)
    store.put("bob", "big-2", 60)
    assert store.get(kept, "alice") == "small"
    with pytest.raises(UnknownImageError):
        store.get(bob_first, "bob")


def test_a_full_store_refuses_instead_of_evicting_another_keys_data():
    clock = Clock()
    store: OwnedStore[str] = OwnedStore(max_count=3, max_bytes=10_000, ttl_s=60, prefix="x_",
                                        per_key_count=2, clock=clock)
    alice = [store.put("alice", f"a{i}", 1) for i in range(2)]
    store.put("bob", "b0", 1)
    with pytest.raises(StoreFullError) as full:
        store.put("carol", "c0", 1)
    assert 1 <= full.value.retry_after_s <= 61
    assert [store.get(i, "alice") for i in alice] == ["a0", "a1"]
    clock.now += 61  # everything expired: room again
    store.put("carol", "c0", 1)


def test_a_missing_entry_says_expired_replaced_or_unknown_and_never_leaks_another_keys():
    clock = Clock()
    store: OwnedStore[str] = OwnedStore(max_count=10, max_bytes=10_000, ttl_s=60, prefix="x_",
                                        clock=clock)
    old = store.put("alice", "old", 1)
    clock.now += 61
    for key, reason in (("alice", "expired"), ("bob", "unknown")):
        with pytest.raises(UnknownImageError) as gone:
            store.get(old, key)
        assert gone.value.reason == reason
    with pytest.raises(UnknownImageError) as never:
        store.get("x_never", "alice")
    assert never.value.reason == "unknown"


def test_image_store_default_quota_keeps_one_keys_images_whatever_another_uploads():
    store = ImageStore()
    image = np.zeros((4, 4, 3), np.uint8)
    mine = store.add("alice", image, "mine")
    for i in range(100):
        store.add("bob", image, f"bob-{i}")
    assert store.get(mine.image_id, "alice").digest == "mine"


@pytest.mark.parametrize(("reason", "words"), [
    ("expired", "has expired (images are kept 3600 s)"),
    ("replaced", "newer ones of the same key (a key keeps at most 32)"),
    ("unknown", "before a server restart"),
])
def test_the_404_message_says_why(reason, words):
    message = gone_message("image", reason, 3600, 32, "Upload it again.")
    assert words in message and message.endswith("Upload it again.")
