"""Hard negatives: candidate sources, false-negative filtering, a curriculum and the trainer datasets."""
