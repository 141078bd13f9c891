"""The hook pipeline: hooks, the bounded event flow from the coordinator through every
hook to the ``run.events()`` streams, and the messages the pipeline sends back."""
