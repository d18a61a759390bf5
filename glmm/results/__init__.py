"""The fitted models and what they answer."""
