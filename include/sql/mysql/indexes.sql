-- Index columns in order (PRIMARY, UNIQUE, plain, FULLTEXT, SPATIAL; composite ones have
-- several rows). COLLATION 'D' is a descending key part, SUB_PART a prefix length.
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, INDEX_TYPE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, COLLATION
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %(db)s
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
