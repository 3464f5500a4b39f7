"""Continuous WAL archiving for PostgreSQL point-in-time recovery.

PostgreSQL (or ``pg_receivewal``) drops finished WAL files into a local spool directory; the
long-running archiver (``service``) uploads them oldest first, reads each object back and only
then removes the spool file. ``fetch`` is the ``restore_command`` side, ``continuity`` checks
that the archive has no gap, ``status`` reports what the archiver and the bucket say.

Modules: ``names`` (segment arithmetic), ``objects`` (the object format, shared with base
backups), ``spool``, ``uploader``, ``heartbeat``, ``state``, ``service``, ``fetch``,
``continuity``, ``status``.
"""
