"""What a text prompt may be: parsing "red car, bicycle" into phrases, within named limits.

Two checks, in order:

1. ``parse_phrases`` (no model needed): the text is split at commas, semicolons and line breaks;
   each phrase is stripped and its inner whitespace collapsed; empty pieces ("dog,,cat") are
   dropped and repeats (case-insensitive) kept once. Refused with ``PromptError``, the limit
   named: empty or whitespace-only text, more than ``max_chars`` characters in all, more than
   ``max_phrases`` phrases, a phrase over ``max_phrase_chars``, control characters.
2. ``check_phrases_for_tokenizer`` (with the model's tokenizer): every phrase must fit the text
   encoder's context (``max_tokens``, special tokens included; SAM 3: 32, OWLv2: 16) and must be
   written mostly in characters the tokenizer has learned.

"A script the tokenizer does not know": CLIP's tokenizer (SAM 3 and OWLv2) is a byte-level BPE,
so it never emits its unknown token: any character is spelled as its UTF-8 bytes. A character
the vocabulary has learned gets one token (or shares a token with its neighbours); one it has
not learned comes out as one token per byte ("狗" -> three byte tokens; measured with the real
CLIP vocabulary: CJK, Greek and Tifinagh letters are byte-spelled, Cyrillic, Arabic, Devanagari,
accented Latin and emoji are learned). We call a non-ASCII character *unknown* when the
tokenizer spells it alone as one token per UTF-8 byte, or maps it to its unknown token
(WordPiece tokenizers such as BERT's, used by GroundingDINO). A phrase is refused when more
than ``max_unknown_fraction`` of its non-space characters are unknown: a stray symbol ("Ωmega")
passes, a phrase the model cannot read ("自転車") gets a message instead of random boxes.
"""

from __future__ import annotations

import numbers
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import PromptError

_SEPARATORS = re.compile(r"[,;\n\r]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class PhraseLimits:
    """Bounds on one text prompt.

    Attributes:
        max_chars: characters in the whole text, separators included (checked before splitting,
            so a 10,000-character paste is refused without work).
        max_phrases: phrases after splitting and removing repeats (each one is a model call for
            SAM 3 and a query for OWLv2).
        max_phrase_chars: characters in one phrase.
        max_unknown_fraction: the largest share of a phrase's non-space characters the
            tokenizer may not know (see the module docstring).
    """

    max_chars: int = 500
    max_phrases: int = 16
    max_phrase_chars: int = 100
    max_unknown_fraction: float = 0.5


DEFAULT_PHRASE_LIMITS = PhraseLimits()


def parse_phrases(
    text: str | Sequence[str], limits: PhraseLimits = DEFAULT_PHRASE_LIMITS
) -> tuple[str, ...]:
    """``"red car, bicycle"`` -> ``("red car", "bicycle")``.

    Args:
        text: one string (phrases separated by commas, semicolons or line breaks), or a
            sequence of strings (each is split the same way).
        limits: the bounds; ``DEFAULT_PHRASE_LIMITS`` unless given.

    Raises:
        PromptError: not text, empty, or over a limit (the message names the limit).
    """
    if isinstance(text, str):
        pieces = [text]
    elif isinstance(text, (list, tuple)) and all(isinstance(p, str) for p in text):
        pieces = list(text)
    else:
        raise PromptError(
            f"A text prompt must be a string such as 'red car, bicycle', got {type(text).__name__}."
        )
    total = sum(len(p) for p in pieces) + max(len(pieces) - 1, 0)
    if total > limits.max_chars:
        raise PromptError(
            f"The text prompt has {total} characters; the limit is {limits.max_chars} "
            "(max_chars). Name the objects in a few words each, e.g. 'red car, bicycle'."
        )
    phrases: list[str] = []
    seen: set[str] = set()
    for piece in pieces:
        for raw in _SEPARATORS.split(piece):
            phrase = _SPACES.sub(" ", raw).strip()
            if not phrase:
                continue
            _check_characters(phrase)
            if len(phrase) > limits.max_phrase_chars:
                raise PromptError(
                    f"The phrase {phrase[:40]!r}... has {len(phrase)} characters; the limit is "
                    f"{limits.max_phrase_chars} per phrase (max_phrase_chars). Use a short noun "
                    "phrase such as 'red car'."
                )
            key = phrase.casefold()
            if key not in seen:
                seen.add(key)
                phrases.append(phrase)
            if len(phrases) > limits.max_phrases:
                raise PromptError(
                    f"The text prompt has more than {limits.max_phrases} phrases, the limit "
                    "(max_phrases). Ask for fewer kinds of objects at a time."
                )
    if not phrases:
        raise PromptError(
            "The text prompt is empty; type what to find, e.g. 'dog' or 'red car, bicycle'."
        )
    return tuple(phrases)


def _check_characters(phrase: str) -> None:
    for char in phrase:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise PromptError(
                f"The phrase {phrase[:40]!r} contains the control or unassigned character "
                f"U+{ord(char):04X}; remove it."
            )


def check_phrases_for_tokenizer(
    phrases: Sequence[str],
    tokenizer: Any,
    max_tokens: int,
    model_name: str,
    limits: PhraseLimits = DEFAULT_PHRASE_LIMITS,
) -> None:
    """Refuse phrases the model's text encoder cannot take (too long, or an unknown script).

    Args:
        phrases: from ``parse_phrases``.
        tokenizer: a transformers tokenizer (called as ``tokenizer(text)``, with ``input_ids``).
        max_tokens: the text encoder's context, special tokens included.
        model_name: shown in messages ("SAM 3", "OWLv2").

    Raises:
        PromptError: a phrase over ``max_tokens`` tokens, or mostly unknown characters.
    """
    unk_id = getattr(tokenizer, "unk_token_id", None)
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    for phrase in phrases:
        ids = list(tokenizer(phrase)["input_ids"])
        if len(ids) > max_tokens:
            raise PromptError(
                f"The phrase {phrase[:40]!r} is {len(ids)} tokens long; {model_name} reads at most "
                f"{max_tokens} (its text encoder's context, max_tokens). Shorten it."
            )
        letters = [c for c in phrase if not c.isspace()]
        unknown = [c for c in dict.fromkeys(letters) if _unknown_char(c, tokenizer, unk_id,
                                                                        special)]
        share = sum(letters.count(c) for c in unknown) / max(len(letters), 1)
        if unknown and share > limits.max_unknown_fraction:
            shown = "".join(unknown[:8])
            raise PromptError(
                f"{model_name}'s tokenizer does not know the characters {shown!r} in "
                f"{phrase[:40]!r} ({share:.0%} of the phrase; at most "
                f"{limits.max_unknown_fraction:.0%} may be unknown, max_unknown_fraction): it "
                "was trained on English text. Describe the object in English, e.g. 'dog'."
            )


def _unknown_char(char: str, tokenizer: Any, unk_id: Any, special: set[int]) -> bool:
    """True when the tokenizer maps ``char`` (alone) to its unknown token or spells it byte by
    byte (one token per UTF-8 byte: its byte-level fallback, no learned merge)."""
    if char.isascii():
        return False
    ids = [i for i in tokenizer(char, add_special_tokens=False)["input_ids"] if i not in special]
    if unk_id is not None and unk_id in tokenizer(char, add_special_tokens=False)["input_ids"]:
        return True
    size = len(char.encode("utf-8"))
    return size > 1 and len(ids) >= size


def check_threshold(threshold: Any) -> float:
    """A score threshold in [0, 1], or ``PromptError``."""
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
        raise PromptError(f"The score threshold must be a number in [0, 1], got {threshold!r}.")
    value = float(threshold)
    if not 0.0 <= value <= 1.0:
        raise PromptError(f"The score threshold must be in [0, 1], got {value:g}.")
    return value
