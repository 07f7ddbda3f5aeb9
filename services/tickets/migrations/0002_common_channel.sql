-- Channels now use kefu.common.v1.Channel, shared with the customers service:
-- online chat 2 -> 5, WeChat 4 -> 2, in person 5 -> 6 (phone 1 and email 3 keep theirs).
UPDATE tickets SET channel = CASE channel WHEN 2 THEN 5 WHEN 4 THEN 2 WHEN 5 THEN 6 ELSE channel END;
