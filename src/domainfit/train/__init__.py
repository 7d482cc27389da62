"""Fine-tuning: the sentence-transformers trainer as domainfit builds it (losses, data, evaluator, checkpoints)."""
