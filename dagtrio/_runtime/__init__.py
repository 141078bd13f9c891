"""The runtime: the `Coordinator` users configure, the `Run` handle, and the coordinator
task behind it (its loop, crews of workers, shutdown and the inbox's messages)."""
