"""Model weights: where checkpoints live and how they are fetched (``checkpoints``,
``download_stream``), verified (``checkpoint_verification``) and loaded strictly
(``checkpoint_loading``)."""
