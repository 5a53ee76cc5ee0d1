"""The build engine: config, run folder, the Ray execution of the stages, the books of every stage."""
