-- Accounts (and MariaDB roles, whose host is empty) on a restore server: DEFINERs that name
-- one of these are kept, others are rewritten to CURRENT_USER.
SELECT User, Host FROM mysql.user
