"""The lab's commands: the launcher, the experiment, the drills and the benchmark (`labctl --help`)."""
