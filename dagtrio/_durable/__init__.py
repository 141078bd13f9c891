"""Durability: the SQLite journal, a run's recorder, replay for resume and reports, the
journal's wire format and the cache. Implements the state's `Recorder` and
`MemoPolicy` protocols; the state never imports this room."""
