"""Fine-tuning: one place that builds and runs the sentence-transformers trainer."""
