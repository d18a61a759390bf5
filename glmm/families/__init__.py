"""The GLM families, their links and the response they give the objectives."""
