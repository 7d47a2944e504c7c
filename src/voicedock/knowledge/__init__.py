"""Organizations' knowledge bases: documents read, chunked, indexed and searched."""
