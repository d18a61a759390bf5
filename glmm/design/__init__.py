"""Formula and data to the design: X, the random-effects terms, the offset and the prior weights."""
