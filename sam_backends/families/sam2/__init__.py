"""SAM 2.1 (Hiera tiny/small/base+/large), through the ``sam2`` package."""
