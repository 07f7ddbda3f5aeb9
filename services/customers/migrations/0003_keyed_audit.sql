-- The audit trail moves to the kit's shared layout: entries are about a
-- `subject` (here the customer id) and carry the id of the audit key that
-- signed them; entries written before keying keep an empty key id.
ALTER TABLE audit_log RENAME COLUMN customer_id TO subject;
ALTER TABLE audit_log ADD COLUMN key_id TEXT NOT NULL DEFAULT '';

-- The erasure feed other services follow reads the trail by action.
CREATE INDEX audit_log_action ON audit_log (action, seq);
