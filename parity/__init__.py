"""parity: the harness that compares the glmm engine with R's lme4, model by model."""

__version__ = "0.1.0"
