-- Binary log file and position (MariaDB, MySQL before 8.2). Run under the global read lock.
SHOW MASTER STATUS
