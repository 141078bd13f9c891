"""What a node runs: the action protocol, function actions and the registry that names
them (sync functions run in worker threads; executors for processes and clusters come
here too)."""
