"""marketsense.models: model artifacts as services, the registry, the CLI and training see them."""
