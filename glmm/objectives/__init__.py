"""lme4's objectives as functions of the parameters: PIRLS, Laplace, AGQ and their gradients."""
