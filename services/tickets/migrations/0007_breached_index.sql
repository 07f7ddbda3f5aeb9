-- Lists of tickets with a breached target (the SLA board's "breached"
-- filter) start from the few breached open targets instead of every ticket.
CREATE INDEX sla_targets_open_breached ON sla_targets (record_id)
    WHERE open = 1 AND breached_at IS NOT NULL;
