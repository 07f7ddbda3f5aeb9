//! `docs/permissions.md` is generated from the access tables and the
//! gateway's routes; this test fails when it no longer matches them, so every
//! change of access shows up in review. `KEFU_BLESS=1` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn permissions_doc_matches_the_access_tables() {
    let tables: Vec<_> = kefu_suite::MODULES.iter().flat_map(|m| m.access().iter().copied()).collect();
    let doc = kefu_kit::access::render_markdown(
        &tables,
        &kefu_gateway::access::rest_routes(),
        kefu_gateway::access::ENDPOINTS,
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/permissions.md");
    if std::env::var("KEFU_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &doc).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == doc,
        "docs/permissions.md does not match the access tables; review the change and run \
         `KEFU_BLESS=1 cargo test -p kefu --test permissions`"
    );
}
