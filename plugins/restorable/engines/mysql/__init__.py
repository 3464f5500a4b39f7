"""MariaDB and MySQL: logical dumps with mariadb-dump/mysqldump, described from information_schema."""
