"""The HTTP API: the Flask app, its routes (thin: parse, call a service, map errors), the request checks, the caller's identity and the OpenAPI document."""
