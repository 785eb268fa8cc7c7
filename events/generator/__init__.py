"""Fast, vectorized physics generator of L1-format events (the embedded default data)."""
