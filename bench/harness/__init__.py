"""bench/run's pieces: processes, targets and upstreams, scenarios, reports."""
