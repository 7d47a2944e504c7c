"""The SQL both backends share: a module per concept, each the SQL of the protocol of the same
name in ``store/protocols/``, composed into ``SqlTransaction`` (``transaction.py``) and
``SqlReads`` (``reads.py``); the rows they map to (``rows.py``), the session they run on
(``conn.py``) and what a backend locks where nodes race (``locks.py``)."""
