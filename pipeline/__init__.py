"""Configuration, Ray wiring, run directory and CLI of codecorpus."""
