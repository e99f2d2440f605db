"""Run services: submit, ingest of the run-event spool, reconcile, cancel, wait."""
