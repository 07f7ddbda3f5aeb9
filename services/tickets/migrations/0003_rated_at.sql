-- When a ticket was rated, on the service clock (the SLA engine's clock, the
-- one every other ticket time uses). Agent statistics count ratings by it:
-- `updated_at` moves with any later change and is wall-clock time.
ALTER TABLE tickets ADD COLUMN rated_at BIGINT;
-- Ratings given before this column existed: the time of the last "rating"
-- timeline entry, which was written on the service clock when the rating was given.
UPDATE tickets SET rated_at = (
    SELECT MAX(e.at) FROM timeline e WHERE e.ticket_id = tickets.id AND e.kind = 'rating'
) WHERE satisfaction > 0;
