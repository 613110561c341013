"""Settings files: plain YAML validated into typed objects (see ``loader``)."""
