"""The ``award`` telemetry event handler, registered with the scoring consumer."""
