"""Continuous binlog archiving and point-in-time restores for MariaDB (``binlog-archiver``, ``verify-binlog``,
``restore --gtid/--time/--position``): the MariaDB counterpart of ``restorable.wal`` and ``restorable.physical``."""
