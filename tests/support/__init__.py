"""What the suites share: environments, the whole-stack fixtures and helpers, recorders."""
