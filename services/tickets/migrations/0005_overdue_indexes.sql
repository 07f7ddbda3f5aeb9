-- The sweeper's safety net asks the database, every tick, for running
-- targets whose breach or warning fell due and was not recorded. Partial
-- indexes keep that query to the few rows it can return.
CREATE INDEX sla_targets_unbreached_due ON sla_targets (due_at)
    WHERE open = 1 AND breached_at IS NULL AND fulfilled_at IS NULL;
CREATE INDEX sla_targets_unwarned ON sla_targets (warn_at)
    WHERE open = 1 AND warned_at IS NULL AND breached_at IS NULL AND fulfilled_at IS NULL;
