"""Alert KPIs: the alert store, the statistics, and their rendering for pull requests."""
