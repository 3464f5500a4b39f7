-- Binary log file and position (MySQL 8.2 and later renamed SHOW MASTER STATUS).
SHOW BINARY LOG STATUS
