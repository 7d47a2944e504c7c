"""The deployment as shipped (docker/), run outside Docker against the lab and PostgreSQL."""
