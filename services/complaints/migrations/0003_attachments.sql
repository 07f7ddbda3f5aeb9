-- Evidence attachments: metadata here, contents sealed in the file store
-- (`blob_key`); every read of the contents is recorded.
CREATE TABLE complaint_attachments (
    id            TEXT PRIMARY KEY,
    complaint_id  TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    note          TEXT NOT NULL,
    uploaded_by   TEXT NOT NULL,
    uploaded_at   BIGINT NOT NULL,
    blob_key      TEXT NOT NULL,
    -- Set when the customer's data was erased; the contents are deleted.
    erased_at     BIGINT
);
CREATE INDEX complaint_attachments_complaint ON complaint_attachments (complaint_id, uploaded_at);

CREATE TABLE attachment_reads (
    attachment_id TEXT NOT NULL,
    reader        TEXT NOT NULL,
    role          TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX attachment_reads_attachment ON attachment_reads (attachment_id, at);
