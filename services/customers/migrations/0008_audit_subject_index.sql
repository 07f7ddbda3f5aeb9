-- The kit's audit tables come with the index `audit_log_subject` on
-- (subject, seq); the customers' own index on the same columns (made when
-- the column was `customer_id`) goes.
DROP INDEX IF EXISTS audit_log_customer;
