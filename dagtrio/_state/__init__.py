"""The state of a run: the only code that writes the graph.

`state.RunState` holds the nodes, the ready queue, the branches and the counters, and
every change to them; `view.GraphView` is the read-only window everything else gets.
What the state needs from the rooms above it (the journal's recorder, the cache's
memo) it names as protocols (`protocols`), so it never imports them.
"""
