-- A legal hold counts how often it was placed: placing it again while it
-- lasts (a complaint referred to legal channels a second time) renews it,
-- and a release that names an earlier placing no longer ends it.
ALTER TABLE legal_holds ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
