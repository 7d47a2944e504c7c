"""The API's typed request and response models, one module per resource: they validate each
body and query, serialize each answer and, with the routes' metadata, make ``/openapi.json``."""
