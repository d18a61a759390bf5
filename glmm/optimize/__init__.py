"""The search for the optimum: the GLM start, BFGS and its driver."""
