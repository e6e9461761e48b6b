"""Device actions: the registry (the built-in actions come with the dispatcher)."""
