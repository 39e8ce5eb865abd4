"""The speed path: threads and precisions (``accel``), the torch backends' shared steps
(``torch_common``), and the bf16 encoder, fast mask decoder and OpenCV upscaling the fast
precisions use (``fast_encoder``, ``fast_decoder``, ``fast_upscale``)."""
