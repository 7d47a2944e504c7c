"""The REST routes, one module per resource: HTTP only, calling ``calls/`` and the store
(``api/resources.py`` makes the list/get/create/patch/delete handlers)."""
