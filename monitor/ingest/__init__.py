"""ingest stage of the pipeline."""
