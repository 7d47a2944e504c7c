"""What the store offers, one protocol module per concept; ``store/base.py`` composes them into
``Transaction`` (the ``...Writes`` protocols: writes, and the reads that must see them, inside
one database transaction) and ``Store`` (the ``...Reads`` protocols: reads outside any write).
Each concept's SQL is the ``store/sql/`` module of the same name."""
