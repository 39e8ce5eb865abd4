"""Text prompt parsing and limits (no model): phrases, limits named, unknown scripts."""

from __future__ import annotations

import numpy as np
import pytest

from sam_backends.errors import PromptError
from sam_backends.testing.text_models import tiny_clip_tokenizer
from sam_backends.text.phrases import (
    DEFAULT_PHRASE_LIMITS,
    PhraseLimits,
    check_phrases_for_tokenizer,
    check_threshold,
    parse_phrases,
)


@pytest.mark.parametrize("text, phrases", [
    ("dog", ("dog",)),
    ("red car, bicycle", ("red car", "bicycle")),
    ("  red   car ;bicycle\nperson ", ("red car", "bicycle", "person")),
    ("dog,, Dog, DOG ,cat", ("dog", "cat")),
    (["red car", "bicycle, dog"], ("red car", "bicycle", "dog")),
    ("Ωmega", ("Ωmega",)),
])
def test_phrases(text, phrases):
    assert parse_phrases(text) == phrases


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    (",;,", "empty"),
    ("d" * 10_000, "10000 characters; the limit is 500 \\(max_chars\\)"),
    (",".join(["dog"] * 500), "max_chars"),
    (",".join(f"o{i}" for i in range(17)), "more than 16 phrases.*max_phrases"),
    ("x" * 101, "max_phrase_chars"),
    ("dog\x00", "control"),
    ("dog\u200b", "control"),
    (None, "must be a string"),
    (b"dog", "must be a string"),
    (["dog", 3], "must be a string"),
])
def test_refusals_name_the_limit(text, match):
    with pytest.raises(PromptError, match=match):
        parse_phrases(text)


def test_limits_are_adjustable():
    assert parse_phrases(",".join(f"o{i}" for i in range(20)), PhraseLimits(max_phrases=20))
    with pytest.raises(PromptError, match="the limit is 5"):
        parse_phrases("dog cat", PhraseLimits(max_chars=5))
    assert DEFAULT_PHRASE_LIMITS.max_chars == 500 and DEFAULT_PHRASE_LIMITS.max_phrases == 16


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_clip_tokenizer()


@pytest.mark.parametrize("phrase", ["dog", "red car", "Ωmega", "car 车"])
def test_known_enough_phrases_pass(tokenizer, phrase):
    check_phrases_for_tokenizer([phrase], tokenizer, 32, "SAM 3")


@pytest.mark.parametrize("phrase", ["自転車", "狗", "ⴰⵔⴳⴰⵣ", "Ωλμ d"])
def test_unknown_scripts_get_a_clear_message(tokenizer, phrase):
    with pytest.raises(PromptError, match="tokenizer does not know.*max_unknown_fraction"):
        check_phrases_for_tokenizer([phrase], tokenizer, 32, "SAM 3")


def test_characters_the_vocabulary_learned_are_known():
    """A character with its own merged token (as Cyrillic has in CLIP's vocabulary) passes."""
    from transformers import CLIPTokenizer

    base = tiny_clip_tokenizer()
    vocab = dict(base.get_vocab())
    merged = "Ð±</w>"  # "б" (D0 B1) as one token
    vocab[merged] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[("Ð", "±</w>")])
    check_phrases_for_tokenizer(["бб б"], tokenizer, 32, "SAM 3")
    with pytest.raises(PromptError, match="does not know"):
        check_phrases_for_tokenizer(["бб б"], base, 32, "SAM 3")


def test_unk_token_counts_as_unknown():
    """WordPiece tokenizers (GroundingDINO's BERT) map unknown characters to [UNK]."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"[UNK]": 0, "dog": 1}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")
    check_phrases_for_tokenizer(["dog"], fast, 16, "GroundingDINO")
    with pytest.raises(PromptError, match="does not know"):
        check_phrases_for_tokenizer(["ꦲꦤ"], fast, 16, "GroundingDINO")


def test_too_many_tokens(tokenizer):
    with pytest.raises(PromptError, match="18 tokens long; OWLv2 reads at most 16"):
        check_phrases_for_tokenizer(["qzxvqzxvqzxvqzxv"], tokenizer, 16, "OWLv2")


@pytest.mark.parametrize("value", [0, 0.5, 1, np.float32(0.3)])
def test_thresholds(value):
    assert check_threshold(value) == pytest.approx(float(value))


@pytest.mark.parametrize("value", [-1e-3, 1.01, float("nan"), float("inf"), "0.5", None, True])
def test_bad_thresholds(value):
    with pytest.raises(PromptError, match="threshold"):
        check_threshold(value)
