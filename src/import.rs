//! `kefu import customers FILE.csv`: streams rows to ImportCustomers with a
//! progress bar and reports each bad row by line number.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kefu_kit::{auth::Role, client::CallContext};
use kefu_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// CSV file with a header row.
    file: PathBuf,
    /// gRPC address of the customers service.
    #[arg(long, env = "KEFU_ADDR", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Bearer token; without it one is minted from the local signing key.
    #[arg(long, env = "KEFU_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    key: crate::SigningKeyArgs,
}

/// Columns: company_name, uscc, taxpayer_type, tax_credit_rating,
/// business_scope, industry, region, service_tier, account_manager, tags
/// (`;`-separated), preferred_channel, greeting_opt_in, contact_name,
/// contact_role, contact_mobile, contact_email, contact_wechat.
fn row_from_record(
    headers: &csv::StringRecord,
    rec: &csv::StringRecord,
    line: i64,
) -> Result<pb::ImportCustomerRow, String> {
    let get = |name: &str| headers.iter().position(|h| h.trim() == name).and_then(|i| rec.get(i)).unwrap_or("").trim();
    let taxpayer_type = match get("taxpayer_type").to_lowercase().as_str() {
        "general" | "一般纳税人" | "一般納稅人" => pb::TaxpayerType::General as i32,
        "small_scale" | "small-scale" | "小规模纳税人" | "小規模納稅人" => {
            pb::TaxpayerType::SmallScale as i32
        }
        "" => 0,
        other => {
            return Err(format!("taxpayer_type: {other:?} is not general or small_scale"));
        }
    };
    let tax_credit_rating = match get("tax_credit_rating").to_uppercase().as_str() {
        "A" => 1,
        "B" => 2,
        "M" => 3,
        "C" => 4,
        "D" => 5,
        "" => 0,
        other => {
            return Err(format!("tax_credit_rating: {other:?} is not one of A, B, M, C, D"));
        }
    };
    let service_tier = match get("service_tier").to_lowercase().as_str() {
        "standard" => 1,
        "priority" => 2,
        "vip" => 3,
        "" => 0,
        other => {
            return Err(format!("service_tier: {other:?} is not standard, priority or vip"));
        }
    };
    let preferred_channel = match get("preferred_channel").to_lowercase().as_str() {
        "phone" => 1,
        "wechat" => 2,
        "email" => 3,
        "sms" => 4,
        "online_chat" | "chat" => 5,
        "" => 0,
        other => {
            return Err(format!("preferred_channel: {other:?} is not phone, wechat, email, sms or online_chat"));
        }
    };
    let greeting_opt_in = match get("greeting_opt_in").to_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "是" => true,
        "no" | "n" | "false" | "0" | "否" | "" => false,
        other => return Err(format!("greeting_opt_in: {other:?} is not yes or no")),
    };
    let contact = pb::Contact {
        name: get("contact_name").to_owned(),
        role: get("contact_role").to_owned(),
        mobile: get("contact_mobile").to_owned(),
        email: get("contact_email").to_owned(),
        wechat_id: get("contact_wechat").to_owned(),
        primary: true,
        ..Default::default()
    };
    let has_contact = !(contact.name.is_empty()
        && contact.mobile.is_empty()
        && contact.email.is_empty()
        && contact.wechat_id.is_empty());
    Ok(pb::ImportCustomerRow {
        line,
        customer: Some(pb::Customer {
            company_name: get("company_name").to_owned(),
            uscc: get("uscc").to_owned(),
            taxpayer_type,
            tax_credit_rating,
            business_scope: get("business_scope").to_owned(),
            industry: get("industry").to_owned(),
            region: get("region").to_owned(),
            service_tier,
            account_manager: get("account_manager").to_owned(),
            tags: get("tags").split(';').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
            preferences: Some(pb::Preferences { preferred_channel, language: String::new(), greeting_opt_in }),
            ..Default::default()
        }),
        primary_contact: has_contact.then_some(contact),
    })
}

pub(crate) async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let token = match args.token {
        Some(t) => t,
        None => args.key.signer()?.mint("kefu-import", &[Role::Admin], Duration::from_secs(3600))?,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let headers = reader.headers()?.clone();
    for required in ["company_name", "uscc", "taxpayer_type"] {
        if !headers.iter().any(|h| h.trim() == required) {
            anyhow::bail!("{}: the header row has no {required:?} column", args.file.display());
        }
    }
    // Rows are read as they are sent, so a file of any size streams in
    // constant memory; the progress bar follows the bytes read.
    let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{spinner} importing [{bar:40}] {percent}% ({bytes_per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let local = std::sync::Arc::new(std::sync::Mutex::new(LocalErrors::default()));
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ImportCustomerRow>(256);
    let reading = {
        let (bar, local) = (bar.clone(), local.clone());
        tokio::task::spawn_blocking(move || {
            for rec in reader.records() {
                let row = match rec {
                    Ok(rec) => {
                        let line = rec.position().map_or(0, |p| p.line() as i64);
                        bar.set_position(rec.position().map_or(0, |p| p.byte()));
                        row_from_record(&headers, &rec, line).map_err(|reason| pb::ImportRowError { line, reason })
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line() as i64);
                        Err(pb::ImportRowError { line, reason: format!("unreadable CSV row: {e}") })
                    }
                };
                match row {
                    Ok(row) => {
                        if tx.blocking_send(row).is_err() {
                            break; // the call ended; its answer says why
                        }
                    }
                    Err(e) => local.lock().unwrap_or_else(|p| p.into_inner()).add(e),
                }
            }
        })
    };
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let channel = kefu_kit::client::channel(&args.addr)?;
    let mut client = CustomerServiceClient::with_interceptor(channel, CallContext::new(Some(&token))?);
    let result = client.import_customers(stream).await;
    let _ = reading.await;
    bar.finish_and_clear();
    let mut out = result.map_err(|s| anyhow::anyhow!("import refused: {} ({:?})", s.message(), s.code()))?.into_inner();
    let local = std::mem::take(&mut *local.lock().unwrap_or_else(|p| p.into_inner()));
    let total = out.rows_received + local.count;
    let rejected = out.rejected + local.count;
    out.errors.extend(local.listed);
    out.errors.sort_by_key(|e| e.line);
    println!(
        "{total} rows: {} created, {} already present (unchanged), {rejected} rejected",
        out.created, out.unchanged
    );
    for e in out.errors.iter().take(LISTED) {
        println!("  line {}: {}", e.line, e.reason);
    }
    if rejected as usize > LISTED.min(out.errors.len()) {
        println!("  … {} more rejected rows not listed", rejected as usize - LISTED.min(out.errors.len()));
    }
    Ok(if rejected == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// Rows rejected on this side (unreadable or with an unknown code) that the
/// report lists by line.
const LISTED: usize = 1_000;

#[derive(Default)]
struct LocalErrors {
    count: i64,
    listed: Vec<pb::ImportRowError>,
}

impl LocalErrors {
    fn add(&mut self, e: pb::ImportRowError) {
        self.count += 1;
        if self.listed.len() < LISTED {
            self.listed.push(e);
        }
    }
}
