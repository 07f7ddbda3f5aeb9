//! The one query over SLA targets that needs the tickets table: open
//! targets with their ticket's queue and assignee (the rest of the target
//! store is `kefu_sla::store`).
use kefu_kit::Error;
use kefu_sla::store::{OPEN, TARGET_COLUMNS, TargetRow, target_from_row};
use sqlx::{AnyConnection, Row};

/// Open targets after a cursor with their ticket's queue and assignee, for
/// rebuilding the live view page by page.
pub async fn open_targets_page(
    conn: &mut AnyConnection,
    after: &(String, String, i64),
    limit: i64,
) -> Result<Vec<(TargetRow, String, String)>, Error> {
    let cols: String = TARGET_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols}, COALESCE(t.queue, '') AS t_queue, COALESCE(t.assignee, '') AS t_assignee \
         FROM sla_targets s LEFT JOIN tickets t ON t.id = s.record_id \
         WHERE (s.record_id, s.metric, s.cycle) > ($1, $2, $3) AND s.open = {OPEN} \
         ORDER BY s.record_id, s.metric, s.cycle LIMIT {limit}"
    );
    // A row-value comparison walks the primary key: each page is an index range.
    let rows = sqlx::query(&sql).bind(&after.0).bind(&after.1).bind(after.2).fetch_all(conn).await?;
    rows.iter().map(|r| Ok((target_from_row(r)?, r.try_get("t_queue")?, r.try_get("t_assignee")?))).collect()
}
