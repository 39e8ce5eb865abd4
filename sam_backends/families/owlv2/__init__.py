"""OWLv2, through ``transformers``: the open-vocabulary detector of the text pipeline.

It finds boxes for text phrases and a SAM model turns each into a mask
(``text.DetectThenSegment``; the page and API name the pair "owlv2+<sam model id>"). Its
catalogue entry is in ``registry.DETECTORS``; the detector itself is ``text.detectors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Family

FAMILY = Family(
    name="owlv2",
    note="OWLv2 open-vocabulary detector: boxes for text phrases, each segmented by a SAM model",
    precisions=("fp32", "bf16"),  # bf16: autocast (text.hf_common)
)


def load(spec: Any, folder: Path | None, device: str, precision: str) -> Any:
    """``text.detectors.load_owlv2`` on ``folder`` (imports torch and transformers)."""
    from ...text.detectors import load_owlv2

    return load_owlv2(folder, device=device, precision=precision)
