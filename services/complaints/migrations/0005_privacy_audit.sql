-- The audit trail's tables (reads of complaints' personal data and
-- evidence in the clear, category changes, erasures) come from the kit
-- (kefu_kit::audit::SCHEMA).
--
-- The legal hold's placing (customers' LegalHold.generation) a complaint
-- holds, and the one a queued release ends: a release queued before the
-- complaint went to legal channels again does not end the renewed hold.
ALTER TABLE complaints ADD COLUMN hold_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE legal_hold_releases ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
