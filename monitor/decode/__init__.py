"""decode stage of the pipeline."""
