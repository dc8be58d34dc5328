"""Run folders and what is in them: recognising, holding and resuming one, the files seqclf writes
there (status, metrics, curves), checkpoints (read safely, without Lightning), the test's reports,
summaries and plots of runs and sweeps."""
