"""What a person uses: the `codecorpus` command line, the statistics report (terminal and HTML), the
run inspection (`show`, `query`, `serve` over DuckDB) and the build's progress display. The engine
(`codecorpus.pipeline`) never imports it: it is given a view to report progress to."""
