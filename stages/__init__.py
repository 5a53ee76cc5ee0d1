"""Corpus stages: plain functions over Arrow tables. They know nothing of Ray or of the pipeline."""
