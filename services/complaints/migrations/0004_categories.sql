-- The category taxonomy a firm edits (codes with Chinese labels, in its
-- order); retired codes keep their labels for the complaints filed under
-- them. Each complaint carries its category's label, kept in step when a
-- label changes.
CREATE TABLE complaint_categories (
    code     TEXT PRIMARY KEY,
    label    TEXT NOT NULL,
    position BIGINT NOT NULL,
    active   BIGINT NOT NULL
);
INSERT INTO complaint_categories (code, label, position, active) VALUES
    ('service_attitude', '服务态度', 0, 1),
    ('professional_error', '专业差错', 1, 1),
    ('timeliness', '办理时效', 2, 1),
    ('fee_dispute', '收费争议', 3, 1),
    ('information_security', '信息安全', 4, 1),
    ('communication', '沟通不畅', 5, 1),
    ('other', '其他', 6, 1);

ALTER TABLE complaints ADD COLUMN category_label TEXT NOT NULL DEFAULT '';
UPDATE complaints SET category_label = COALESCE(
    (SELECT k.label FROM complaint_categories k WHERE k.code = complaints.category), '其他');
