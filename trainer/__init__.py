"""The bundled MindSpore trainer: CodeGeeX's architecture, fed by a build's Arrow shards."""
