//! The `kefu` binary as an operator uses it: `kefu up`, `kefu admin token`,
//! `kefu import customers`, `kefu health`, and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const KEFU: &str = env!("CARGO_BIN_EXE_kefu");

struct Up {
    child: Child,
    port: u16,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kefu_up(data: &Path) -> Up {
    kefu_up_banner(data).0
}

/// Starts `kefu up` and answers it with the lines it printed up to `kefu ready`.
fn kefu_up_banner(data: &Path) -> (Up, Vec<String>) {
    // Port 0 everywhere: the system picks free ports (a port picked here and
    // bound later could be taken in between by a test beside this one); the
    // banner says which.
    let mut child = Command::new(KEFU)
        .args(["up", "--data-dir", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "kefu up did not print `kefu ready`");
        match lines.next() {
            Some(Ok(l)) if l.contains("kefu ready") => break,
            Some(Ok(l)) => banner.push(l),
            Some(Err(_)) => {}
            None => panic!("kefu up exited before it was ready"),
        }
    }
    let port = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("gRPC").and_then(|r| r.split_whitespace().next()))
        .and_then(|addr| addr.rsplit(':').next()?.parse().ok())
        .expect("the banner names the gRPC address");
    (Up { child, port }, banner)
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(KEFU).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn up_then_import_a_csv_with_bad_rows_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let up = kefu_up(&data);
    assert!(data.join("keys/token-signing.key").exists() && data.join("customers.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(data.join(p)).unwrap().permissions().mode();
        assert_eq!(mode("keys/data.keys") & 0o077, 0, "key files are private");
        assert_eq!(mode("keys/token-signing.key") & 0o077, 0, "key files are private");
        assert_eq!(mode("") & 0o077, 0, "the data directory is private");
        for db in ["customers.db", "tickets.db", "complaints.db", "gateway.db"] {
            assert_eq!(mode(db) & 0o077, 0, "{db} is readable by its owner only");
        }
    }
    let addr = format!("127.0.0.1:{}", up.port);
    let (code, out, _) = run(&["health", &addr]);
    assert_eq!((code, out.trim()), (0, "SERVING"));

    let csv = dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "company_name,uscc,taxpayer_type,tax_credit_rating,service_tier,tags,preferred_channel,greeting_opt_in,contact_name,contact_mobile\n\
         北京示例科技有限公司,91110000600037341L,general,A,vip,vip;monthly,wechat,yes,王芳,13800138000\n\
         校驗位錯誤,91110000600037341X,general,B,standard,,,no,李雷,13900139000\n\
         類型錯誤,91310000000000001X,partnership,A,standard,,,no,,\n\
         上海樣本貿易有限公司,913100000000000022,small_scale,M,priority,,email,yes,張三,13700137000\n",
    )
    .unwrap();
    let data_arg = data.to_str().unwrap();
    let (code, out, err) =
        run(&["import", "customers", csv.to_str().unwrap(), "--addr", &addr, "--data-dir", data_arg]);
    assert_eq!(code, 2, "rejected rows give exit code 2: {out}{err}");
    assert!(out.contains("4 rows: 2 created, 0 already present (unchanged), 2 rejected"), "{out}");
    assert!(out.contains("line 3:") && out.contains("check character"), "{out}");
    assert!(out.contains("line 4:") && out.contains("taxpayer_type"), "{out}");

    let (code, out, _) = run(&["import", "customers", csv.to_str().unwrap(), "--addr", &addr, "--data-dir", data_arg]);
    assert_eq!(code, 2);
    assert!(out.contains("0 created, 2 already present (unchanged)"), "re-running creates no duplicates: {out}");

    let (code, token, _) = run(&["admin", "token", "--role", "agent", "--staff-id", "a-1", "--data-dir", data_arg]);
    assert_eq!(code, 0);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT");
}

#[test]
fn bad_settings_stop_kefu_with_a_message_naming_them() {
    let (code, _, err) = Command::new(KEFU)
        .args(["serve", "customers", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", "k1:tooshort")
        .env("KEFU_DATA_KEYS", "d1:AAAA")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .map(|o| (o.status.code().unwrap_or(-1), String::new(), String::from_utf8_lossy(&o.stderr).into_owned()))
        .unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("KEFU_TOKEN_PUBLIC_KEYS"), "{err}");

    let keys = run(&["admin", "keygen", "token"]).1;
    let public = keys.lines().find_map(|l| l.strip_prefix("KEFU_TOKEN_PUBLIC_KEYS=")).unwrap().to_owned();
    let out = Command::new(KEFU)
        .args(["serve", "customers"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_DATA_KEYS", "d1:AAAA")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("KEFU_DATA_KEYS") && err.contains("expected 32"), "{err}");

    let data = run(&["admin", "keygen", "data"]).1;
    let data_keys = data.trim().strip_prefix("KEFU_DATA_KEYS=").unwrap().to_owned();
    let out = Command::new(KEFU)
        .args(["serve", "customers"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_DATA_KEYS", &data_keys)
        .env_remove("KEFU_AUDIT_KEYS")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_AUDIT_KEYS"), "the audit key is required: {err}");

    let audit = run(&["admin", "keygen", "audit"]).1;
    let audit_keys = audit.trim().strip_prefix("KEFU_AUDIT_KEYS=").unwrap().to_owned();
    let out = Command::new(KEFU)
        .args(["serve", "customers"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_DATA_KEYS", &data_keys)
        .env("KEFU_AUDIT_KEYS", &audit_keys)
        .env("KEFU_DATABASE_URL", "mysql://db/kefu")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("KEFU_DATABASE_URL"), "{err}");

    let (code, _, err) = run(&["admin", "token", "--role", "root", "--staff-id", "x"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown role"), "{err}");

    // No token outlives the maximum lifetime, however it is asked for.
    let signing = keys.lines().find_map(|l| l.strip_prefix("KEFU_TOKEN_SIGNING_KEY=")).unwrap().to_owned();
    let out = Command::new(KEFU)
        .args(["admin", "token", "--role", "service", "--staff-id", "crm", "--ttl", "36500d"])
        .env("KEFU_TOKEN_SIGNING_KEY", &signing)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("at most 31 days"), "{err}");

    // Settings an embedded `kefu up` does not need are required by `serve`.
    let out = Command::new(KEFU)
        .args(["serve", "customers"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env_remove("KEFU_DATA_KEYS")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_DATA_KEYS"), "{err}");
    let out = Command::new(KEFU)
        .args(["serve", "tickets"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env_remove("KEFU_REDIS_URL")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_REDIS_URL"), "{err}");
    let out = Command::new(KEFU)
        .args(["serve", "tickets"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_REDIS_URL", "redis://127.0.0.1:9")
        .env_remove("KEFU_SERVICE_TOKEN_FILE")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_SERVICE_TOKEN_FILE"), "erasures need it: {err}");
    let out = Command::new(KEFU)
        .args(["serve", "complaints"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env_remove("KEFU_REDIS_URL")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_REDIS_URL"), "complaint deadlines live in Redis: {err}");
    let out = Command::new(KEFU)
        .args(["serve", "complaints"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_REDIS_URL", "redis://127.0.0.1:9")
        .env_remove("KEFU_BLOB_URL")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_BLOB_URL"), "evidence needs a file store: {err}");
    let out = Command::new(KEFU)
        .args(["serve", "complaints"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_REDIS_URL", "redis://127.0.0.1:9")
        .env("KEFU_BLOB_URL", "s3://evidence")
        .env_remove("KEFU_S3_ENDPOINT")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_S3_ENDPOINT"), "{err}");
    let out = Command::new(KEFU)
        .args(["serve", "complaints"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_REDIS_URL", "redis://127.0.0.1:9")
        .env("KEFU_BLOB_URL", "file:///var/lib/kefu/files")
        .env("KEFU_BLOB_KEYS", "b:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .env_remove("KEFU_AUDIT_KEYS")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_AUDIT_KEYS"), "clear reads are audited: {err}");
    let out = Command::new(KEFU)
        .args(["serve", "complaints"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_REDIS_URL", "redis://127.0.0.1:9")
        .env("KEFU_BLOB_URL", "file:///var/lib/kefu/files")
        .env("KEFU_BLOB_KEYS", "b:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .env("KEFU_AUDIT_KEYS", &audit_keys)
        .env_remove("KEFU_SERVICE_TOKEN_FILE")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("set KEFU_SERVICE_TOKEN_FILE") && err.contains("complaints"),
        "erasures reach complaints too: {err}"
    );
    let out = Command::new(KEFU)
        .args(["serve", "training"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env_remove("KEFU_SERVICE_TOKEN_FILE")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("set KEFU_SERVICE_TOKEN_FILE") && err.contains("trainees' figures"),
        "training reads figures with its own token: {err}"
    );
    let token_file = std::env::temp_dir().join(format!("kefu-cli-{}.token", std::process::id()));
    std::fs::write(&token_file, "x").unwrap();
    let out = Command::new(KEFU)
        .args(["serve", "tickets"])
        .env("KEFU_TOKEN_PUBLIC_KEYS", &public)
        .env("KEFU_REDIS_URL", "redis://127.0.0.1:9")
        .env("KEFU_SERVICE_TOKEN_FILE", &token_file)
        .env_remove("KEFU_AUDIT_KEYS")
        .env("KEFU_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&token_file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("set KEFU_AUDIT_KEYS"), "configuration changes are audited: {err}");
}

#[test]
fn migrate_names_the_schemas_and_the_database_each_one_lacks() {
    let (code, _, err) = run(&["migrate", "billing"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no schema \"billing\"")
            && err.contains("staff, customers, tickets, complaints, training, performance, gateway, all"),
        "{err}"
    );

    let out = Command::new(KEFU)
        .args(["migrate", "all", "--url", "customers=sqlite://unused.db"])
        .env_remove("KEFU_STAFF_DATABASE_URL")
        .env_remove("KEFU_TICKETS_DATABASE_URL")
        .env_remove("KEFU_COMPLAINTS_DATABASE_URL")
        .env_remove("KEFU_GATEWAY_DATABASE_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no database for staff: set KEFU_STAFF_DATABASE_URL"), "{err}");
    assert!(!std::path::Path::new("unused.db").exists(), "a schema was migrated before every URL was known");

    // Every schema, each on its own database, from --url and the environment.
    let dir = tempfile::tempdir().unwrap();
    let url = |n: &str| format!("sqlite://{}", dir.path().join(format!("{n}.db")).display());
    let out = Command::new(KEFU)
        .args([
            "migrate",
            "all",
            "--url",
            &format!("customers={}", url("c")),
            "--url",
            &format!("tickets={}", url("t")),
            "--url",
            &format!("complaints={}", url("p")),
            "--url",
            &format!("training={}", url("l")),
            "--url",
            &format!("staff={}", url("s")),
            "--url",
            &format!("performance={}", url("e")),
        ])
        .env("KEFU_GATEWAY_DATABASE_URL", url("g"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["staff", "customers", "tickets", "complaints", "training", "performance", "gateway"] {
        assert!(stdout.contains(&format!("migrated {name}")), "{stdout}");
    }
    for f in ["s.db", "c.db", "t.db", "p.db", "l.db", "e.db", "g.db"] {
        assert!(dir.path().join(f).exists(), "{f} was not created");
    }
}

/// Rotating the key-encryption key: put a new key first, `kefu admin
/// rewrap`, drop the old key, and every tax profile still opens; a database
/// copy opened with the old key alone no longer yields the customers' keys.
#[test]
fn rewrap_moves_every_customer_key_to_the_new_key_encryption_key() {
    use kefu_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let token = |role: &str| run(&["admin", "token", "--role", role, "--staff-id", "s-1", "--data-dir", &data_arg]).1;
    let client = |port: u16, token: String| {
        let ch = kefu_kit::client::channel(&format!("http://127.0.0.1:{port}")).unwrap();
        CustomerServiceClient::with_interceptor(ch, kefu_kit::client::CallContext::new(Some(token.trim())).unwrap())
    };

    let up = kefu_up(&data);
    let sup = token("supervisor");
    let id = rt.block_on(async {
        let mut c = client(up.port, sup.clone());
        let uscc = kefu_customers::domain::uscc_with_check("91310000555000111").unwrap();
        let cust = c
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    company_name: "轮换测试有限公司".into(),
                    uscc,
                    taxpayer_type: pb::TaxpayerType::General as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        c.update_tax_profile(pb::UpdateTaxProfileRequest {
            tax_profile: Some(pb::TaxProfile {
                customer_id: cust.id.clone(),
                tax_registration_number: "91310000MA1FL8TQ3X".into(),
                ..Default::default()
            }),
            purpose: "onboarding".into(),
        })
        .await
        .unwrap();
        cust.id
    });
    drop(up);

    let keys_file = data.join("keys/data.keys");
    let old = std::fs::read_to_string(&keys_file).unwrap().trim().to_owned();
    let new = run(&["admin", "keygen", "data", "--kid", "rotated"])
        .1
        .trim()
        .strip_prefix("KEFU_DATA_KEYS=")
        .unwrap()
        .to_owned();
    let out = Command::new(KEFU)
        .args(["admin", "rewrap", "--data-dir", &data_arg])
        .env("KEFU_DATA_KEYS", format!("{new},{old}"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("1 customer keys rewrapped under rotated-"), "{said}");
    let again = Command::new(KEFU)
        .args(["admin", "rewrap", "--data-dir", &data_arg])
        .env("KEFU_DATA_KEYS", format!("{new},{old}"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 customer keys rewrapped"), "nothing left to do");

    // The old key is gone from the host; the profile still opens.
    std::fs::write(&keys_file, &new).unwrap();
    let up = kefu_up(&data);
    let account = rt.block_on(async {
        client(up.port, token("supervisor"))
            .get_tax_profile(pb::GetTaxProfileRequest {
                customer_id: id, unmasked: true, purpose: "轮换核对".into()
            })
            .await
            .unwrap()
            .into_inner()
            .tax_registration_number
    });
    assert_eq!(account, "91310000MA1FL8TQ3X");
}

/// `kefu up` keeps the live SLA view in memory: a restart builds it from the
/// database before printing `kefu ready`, so the SLA board is whole from the
/// first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_kefu_up_has_every_open_target_on_the_sla_board_when_it_says_ready() {
    use kefu_kit::client::CallContext;
    use kefu_proto::{
        common::v1::Channel,
        tickets::v1::{self as pb, ticket_service_client::TicketServiceClient},
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let up = tokio::task::spawn_blocking({
        let data = data.clone();
        move || kefu_up(&data)
    })
    .await
    .unwrap();
    let (code, token, _) =
        run(&["admin", "token", "--role", "supervisor", "--staff-id", "s-1", "--data-dir", &data_arg]);
    assert_eq!(code, 0);
    let client = |port: u16| {
        let ch = kefu_kit::client::channel(&format!("http://127.0.0.1:{port}")).unwrap();
        TicketServiceClient::with_interceptor(ch, CallContext::new(Some(token.trim())).unwrap())
    };
    let mut c = client(up.port);
    for i in 0..5 {
        let req = pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::Consultation as i32,
                channel: Channel::OnlineChat as i32,
                subject: format!("重启测试 {i}"),
                requester: "visitor@client.example".into(),
                ..Default::default()
            }),
            request_id: format!("restart-{i}"),
            ..Default::default()
        };
        c.create_ticket(req).await.unwrap();
    }
    let board = |mut c: TicketServiceClient<_>| async move {
        c.get_sla_dashboard(pb::GetSlaDashboardRequest { within_minutes: 60 })
            .await
            .unwrap()
            .into_inner()
            .total
            .unwrap_or_default()
            .open
    };
    // The live view is written just after each commit: wait for all of it.
    let mut before = 0;
    for _ in 0..100 {
        before = board(c.clone()).await;
        if before >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(before, 10, "five chat tickets, a first response and a resolution each");
    drop(up);
    let (again, banner) = tokio::task::spawn_blocking(move || kefu_up_banner(&data)).await.unwrap();
    assert!(
        banner.iter().any(|l| l.trim() == "SLA    10 open targets on the live board"),
        "built before `kefu ready`: {banner:?}"
    );
    assert_eq!(board(client(again.port)).await, before, "the board is whole at the first answer after ready");
}
