"""The application: journal, dispatcher, Twilio Command semantics, config, CLI, service."""
