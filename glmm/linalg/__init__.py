"""Dense and blocked linear algebra of the objectives."""
