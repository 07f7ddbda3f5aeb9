-- Request ids of tickets created before the kit's idempotency table existed
-- are claimed there, so a late retry gets its ticket rather than a conflict.
-- Their fingerprint is unknown (empty): any retry with the id matches.
INSERT INTO kit_idempotency (scope, request_id, resource_id, fingerprint, created_at)
SELECT 'tickets', request_id, id, '', created_at FROM tickets
WHERE request_id IS NOT NULL AND request_id <> ''
ON CONFLICT (scope, request_id) DO NOTHING;
