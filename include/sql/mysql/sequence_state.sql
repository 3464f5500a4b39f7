-- One MariaDB sequence's settings and next value; {sequence} is a quoted identifier.
SELECT next_not_cached_value, minimum_value, maximum_value, start_value, increment,
       cache_size, cycle_option
FROM {sequence}
