"""Data layer: BEIR folders, pair files, validation, splits and the demo corpus."""
