-- Request ids of customers created before the kit's idempotency table
-- existed are claimed there, so a late retry gets its customer rather than a
-- conflict. Their fingerprint is unknown (empty): any retry with the id matches.
INSERT INTO kit_idempotency (scope, request_id, resource_id, fingerprint, created_at)
SELECT 'customers', request_id, id, '', created_at FROM customers
WHERE request_id IS NOT NULL AND request_id <> ''
ON CONFLICT (scope, request_id) DO NOTHING;
