//! The customers domain: the firm's rules for unified social credit codes,
//! mobiles and emails, what a customer, contact, consent, follow-up plan,
//! visit and greeting are once stored, masking and the
//! festival calendar. No I/O.
//!
//! Request fields are parsed in the API modules, with `kefu_kit::parse` for
//! text, timestamps, dates, enums, ids and tags and with the parsers below
//! for the codes and addresses only this service knows.
use chrono::{Datelike, NaiveDate, Utc};
use kefu_kit::Error;
pub use kefu_proto::common::v1::Channel;
use kefu_proto::customers::v1 as pb;
pub use pb::{DataCategory, LifecycleStatus, ServiceTier, TaxCreditRating, TaxpayerType};

/// A customer has at most this many tags…
pub const MAX_TAGS: usize = 32;
/// …of at most this many characters each.
pub const MAX_TAG_CHARS: usize = 32;
/// A customer has at most this many contacts.
pub const MAX_CONTACTS: usize = 50;

/// The GB 32100-2015 alphabet: digits and capitals without I, O, Z, S, V.
const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// A unified social credit code (統一社會信用代碼).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uscc {
    code: String,
    /// The check character failed and the code was accepted by override.
    pub check_failed: bool,
}

impl Uscc {
    /// Parses the code in request field `field`. Format errors are always
    /// refused; a failing check character is refused unless `allow_bad_check`
    /// (early pilot codes).
    pub fn parse(field: &str, raw: &str, allow_bad_check: bool) -> Result<Self, Error> {
        let code: String = raw.trim().to_ascii_uppercase();
        if code.chars().count() != 18 {
            return Err(Error::invalid(field, format!("must be 18 characters, got {}", code.chars().count())));
        }
        let mut values = Vec::with_capacity(18);
        for (i, c) in code.chars().enumerate() {
            match USCC_ALPHABET.find(c) {
                Some(v) => values.push(v as u32),
                None => {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "character {} ({c:?}) is not allowed (digits and capitals except I, O, Z, S, V)",
                            i + 1
                        ),
                    ));
                }
            }
        }
        let expected = uscc_check_value(&values[..17]);
        let check_failed = values[17] != expected;
        if check_failed && !allow_bad_check {
            let want = USCC_ALPHABET.chars().nth(expected as usize).unwrap_or('?');
            return Err(Error::invalid(
                field,
                format!(
                    "check character should be {want:?}; set allow_invalid_uscc_checksum to accept an early pilot code"
                ),
            ));
        }
        Ok(Self { code, check_failed })
    }

    pub fn as_str(&self) -> &str {
        &self.code
    }
}

fn uscc_check_value(first17: &[u32]) -> u32 {
    let sum: u32 = first17.iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
    (31 - sum % 31) % 31
}

/// Completes 17 characters with their check character (tests, fixtures).
pub fn uscc_with_check(first17: &str) -> Option<String> {
    let values: Option<Vec<u32>> = first17.chars().map(|c| USCC_ALPHABET.find(c).map(|v| v as u32)).collect();
    let values = values.filter(|v| v.len() == 17)?;
    let check = USCC_ALPHABET.chars().nth(uscc_check_value(&values) as usize)?;
    Some(format!("{first17}{check}"))
}

/// A mainland China mobile number, normalised to 11 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mobile(String);

impl Mobile {
    /// Parses the number in request field `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let digits = digits
            .strip_prefix("+86")
            .or_else(|| digits.strip_prefix("0086"))
            .or_else(|| if digits.len() == 13 { digits.strip_prefix("86") } else { None })
            .unwrap_or(&digits);
        let ok = digits.len() == 11
            && digits.chars().all(|c| c.is_ascii_digit())
            && digits.starts_with('1')
            && matches!(digits.as_bytes()[1], b'3'..=b'9');
        if ok {
            Ok(Self(digits.to_owned()))
        } else {
            let shown: String = raw.chars().take(32).collect();
            Err(Error::invalid(
                field,
                format!("{shown:?} is not a mainland mobile number (11 digits starting 13–19, optional +86)"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, syntax-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses the address in request field `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let s = raw.trim();
        let ok = s.len() <= 254
            && email_address::EmailAddress::parse_with_options(
                s,
                email_address::Options::default().with_required_tld(),
            )
            .is_ok();
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            let shown: String = raw.chars().take(64).collect();
            Err(Error::invalid(field, format!("{shown:?} is not a valid email address")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The firm's civil date today (China Standard Time, UTC+8, no DST).
pub fn today() -> NaiveDate {
    (Utc::now().naive_utc() + chrono::Duration::hours(8)).date()
}

/// `d` moved by `days`; `d` itself when that leaves the calendar.
pub fn add_days(d: NaiveDate, days: i64) -> NaiveDate {
    d.checked_add_signed(chrono::Duration::days(days)).unwrap_or(d)
}

// ---------------------------------------------------------------- stored values

/// A customer's profile as kept; its tags and contacts are kept apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub company_name: String,
    pub uscc: String,
    /// The USCC failed its check character and was accepted by override.
    pub uscc_check_failed: bool,
    pub taxpayer_type: TaxpayerType,
    pub tax_credit_rating: TaxCreditRating,
    pub business_scope: String,
    pub industry: String,
    pub region: String,
    pub service_tier: ServiceTier,
    pub account_manager: String,
    pub preferred_channel: Channel,
    pub language: String,
    pub greeting_opt_in: bool,
    pub lifecycle_status: LifecycleStatus,
    /// Bumped by every change; the etag.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The statuses whose customers are greeted on festivals.
pub const GREETED_STATUSES: [LifecycleStatus; 2] = [LifecycleStatus::Active, LifecycleStatus::Dormant];

impl Customer {
    /// Live customers are neither archived nor erased; the USCC is unique
    /// among them.
    pub fn is_live(&self) -> bool {
        !matches!(self.lifecycle_status, LifecycleStatus::Archived | LifecycleStatus::Erased)
    }

    /// Refuses any change to a customer whose personal data was erased.
    pub fn ensure_writable(&self) -> Result<(), Error> {
        if self.lifecycle_status == LifecycleStatus::Erased {
            return Err(Error::FailedPrecondition(
                "this customer's personal data was erased; its records are locked".into(),
            ));
        }
        Ok(())
    }
}

/// A contact person of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub role: String,
    /// Normalised as [`Mobile`] makes it.
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub wechat_id: Option<String>,
    pub primary: bool,
}

/// What ListCustomers looks for; each `Some` narrows the result.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Also archived and erased customers.
    pub include_archived: bool,
    /// A case-insensitive fragment of the company name, matched literally.
    pub name_contains: Option<String>,
    pub uscc: Option<String>,
    /// Any contact's mobile.
    pub contact_mobile: Option<Mobile>,
    /// Any contact's email, case-insensitive.
    pub contact_email: Option<String>,
    /// Any contact's name, or its beginning.
    pub contact_name: Option<String>,
    pub tag: Option<String>,
    pub service_tier: Option<ServiceTier>,
    pub account_manager: Option<String>,
    /// Only customers whose id sorts after this one (the page cursor).
    pub after_id: Option<String>,
}

/// A recorded consent to process or disclose a customer's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    pub customer_id: String,
    pub purpose: String,
    /// Empty: the firm's own processing.
    pub recipient: String,
    /// Sorted, without duplicates.
    pub categories: Vec<DataCategory>,
    pub granted_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub recorded_by: String,
    pub evidence: String,
}

/// Every category of data a customer's records hold.
/// A data category as people read it.
pub fn category_label(c: DataCategory) -> &'static str {
    match c {
        DataCategory::Unspecified => "未指定",
        DataCategory::Profile => "基本资料",
        DataCategory::Contacts => "联系人信息",
        DataCategory::TaxFinancial => "税务与财务资料",
        DataCategory::ServiceHistory => "服务记录",
    }
}

pub const ALL_CATEGORIES: [DataCategory; 4] =
    [DataCategory::Profile, DataCategory::Contacts, DataCategory::TaxFinancial, DataCategory::ServiceHistory];

impl Consent {
    /// Neither revoked nor expired at `at_ms`.
    pub fn is_live(&self, at_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > at_ms)
    }

    /// Live at `at_ms` and allows disclosing every one of `categories` to
    /// `recipient`.
    pub fn covers(&self, recipient: &str, categories: &[DataCategory], at_ms: i64) -> bool {
        self.is_live(at_ms) && self.recipient == recipient && categories.iter().all(|c| self.categories.contains(c))
    }
}

/// A customer's follow-up visit schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpPlan {
    pub customer_id: String,
    /// Staff id responsible for the visits.
    pub owner: String,
    pub cycle_days: i64,
    pub next_due: NaiveDate,
    pub active: bool,
    pub last_visit: Option<NaiveDate>,
    /// The customer's name (read with the plan, not stored with it).
    pub company_name: String,
}

impl FollowUpPlan {
    /// Takes a visit on `date` into the schedule: the next visit is due one
    /// cycle later. A late-recorded older visit does not move the schedule
    /// backwards.
    pub fn record_visit(&mut self, date: NaiveDate) {
        if self.last_visit.is_none_or(|l| l <= date) {
            self.last_visit = Some(date);
            self.next_due = add_days(date, self.cycle_days);
        }
    }
}

/// What ListDueFollowUps looks for.
#[derive(Debug, Clone)]
pub struct DueFilter {
    /// Plans due on or before this date.
    pub due_by: NaiveDate,
    pub owner: Option<String>,
    /// Only plans after this `(next_due, customer_id)` (the page cursor).
    pub after: Option<(NaiveDate, String)>,
}

/// A recorded follow-up visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub id: String,
    pub customer_id: String,
    pub visit_date: NaiveDate,
    pub channel: Channel,
    pub outcome: String,
    /// 1–5.
    pub satisfaction: i32,
    pub notes: String,
    pub visited_by: String,
    /// The plan's next due date after this visit.
    pub next_due: NaiveDate,
}

/// A festival greeting that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentGreeting {
    pub festival: Festival,
    pub year: i32,
    pub channel: Channel,
    pub sent_at: i64,
}

// ---------------------------------------------------------------- masking

pub use kefu_kit::mask::{mask_all, mask_email, mask_middle, mask_tail};

// ---------------------------------------------------------------- festivals

/// Festivals the firm greets customers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Festival {
    NewYear,
    SpringFestival,
    Lantern,
    LabourDay,
    DragonBoat,
    MidAutumn,
    NationalDay,
    DoubleNinth,
}

impl Festival {
    pub const ALL: [Festival; 8] = [
        Festival::NewYear,
        Festival::SpringFestival,
        Festival::Lantern,
        Festival::LabourDay,
        Festival::DragonBoat,
        Festival::MidAutumn,
        Festival::NationalDay,
        Festival::DoubleNinth,
    ];

    /// (lunar?, month, day).
    fn rule(self) -> (bool, u8, u8) {
        match self {
            Festival::NewYear => (false, 1, 1),
            Festival::LabourDay => (false, 5, 1),
            Festival::NationalDay => (false, 10, 1),
            Festival::SpringFestival => (true, 1, 1),
            Festival::Lantern => (true, 1, 15),
            Festival::DragonBoat => (true, 5, 5),
            Festival::MidAutumn => (true, 8, 15),
            Festival::DoubleNinth => (true, 9, 9),
        }
    }

    /// The festival's value in the contract (and in the database);
    /// `FESTIVAL_UNSPECIFIED` is none.
    pub fn from_pb(f: pb::Festival) -> Option<Self> {
        Some(match f {
            pb::Festival::Unspecified => return None,
            pb::Festival::NewYear => Festival::NewYear,
            pb::Festival::SpringFestival => Festival::SpringFestival,
            pb::Festival::Lantern => Festival::Lantern,
            pb::Festival::LabourDay => Festival::LabourDay,
            pb::Festival::DragonBoat => Festival::DragonBoat,
            pb::Festival::MidAutumn => Festival::MidAutumn,
            pb::Festival::NationalDay => Festival::NationalDay,
            pb::Festival::DoubleNinth => Festival::DoubleNinth,
        })
    }

    pub fn to_pb(self) -> pb::Festival {
        match self {
            Festival::NewYear => pb::Festival::NewYear,
            Festival::SpringFestival => pb::Festival::SpringFestival,
            Festival::Lantern => pb::Festival::Lantern,
            Festival::LabourDay => pb::Festival::LabourDay,
            Festival::DragonBoat => pb::Festival::DragonBoat,
            Festival::MidAutumn => pb::Festival::MidAutumn,
            Festival::NationalDay => pb::Festival::NationalDay,
            Festival::DoubleNinth => pb::Festival::DoubleNinth,
        }
    }

    pub fn is_lunar(self) -> bool {
        self.rule().0
    }

    /// The festival's name people read (the one label table: 春节, 中秋节).
    pub fn name_zh(self) -> &'static str {
        use kefu_proto::ProtoEnum as _;
        self.to_pb().label_zh()
    }

    /// The Gregorian date of the festival in `year`.
    pub fn date(self, year: i32) -> Result<NaiveDate, Error> {
        let out_of_range = || Error::invalid("year", format!("{year} is outside the supported range 1901–2100"));
        if !(1901..=2100).contains(&year) {
            return Err(out_of_range());
        }
        let (lunar, m, d) = self.rule();
        if lunar {
            let y = u16::try_from(year).map_err(|_| out_of_range())?;
            let ld = chinese_lunisolar_calendar::LunisolarDate::from_ymd(y, m, false, d).map_err(|_| out_of_range())?;
            let date = ld.to_naive_date();
            debug_assert!(date.year() == year || self == Festival::SpringFestival);
            Ok(date)
        } else {
            NaiveDate::from_ymd_opt(year, u32::from(m), u32::from(d)).ok_or_else(out_of_range)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn uscc_reference_example_passes_and_bad_check_is_flagged_or_refused() {
        let ok = Uscc::parse("uscc", "91110000600037341L", false).unwrap();
        assert!(!ok.check_failed);
        assert_eq!(ok.as_str(), "91110000600037341L");
        // Lower case is normalised.
        assert!(Uscc::parse("uscc", "91110000600037341l", false).is_ok());
        let err = Uscc::parse("uscc", "91110000600037341A", false).unwrap_err().to_string();
        assert!(err.contains("uscc") && err.contains("'L'"), "{err}");
        let flagged = Uscc::parse("uscc", "91110000600037341A", true).unwrap();
        assert!(flagged.check_failed);
        assert!(Uscc::parse("uscc", "9111000060003734", true).unwrap_err().to_string().contains("18 characters"));
        assert!(Uscc::parse("uscc", "91110000600037341O", true).unwrap_err().to_string().contains("not allowed"));
    }

    proptest! {
        #[test]
        fn completed_codes_always_validate(body in "[0-9A-HJ-NPQRTUWXY]{17}") {
            let code = uscc_with_check(&body).unwrap();
            prop_assert!(!Uscc::parse("uscc", &code, false).unwrap().check_failed);
        }

        #[test]
        fn any_single_substitution_is_caught(body in "[0-9A-HJ-NPQRTUWXY]{17}", pos in 0usize..18, shift in 1u32..31) {
            let code = uscc_with_check(&body).unwrap();
            let mut chars: Vec<char> = code.chars().collect();
            let v = USCC_ALPHABET.find(chars[pos]).unwrap() as u32;
            chars[pos] = USCC_ALPHABET.chars().nth(((v + shift) % 31) as usize).unwrap();
            let altered: String = chars.into_iter().collect();
            prop_assert!(Uscc::parse("uscc", &altered, false).is_err());
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = Uscc::parse("uscc", &s, true);
            let _ = Mobile::parse("mobile", &s);
            let _ = Email::parse("email", &s);
        }
    }

    #[test]
    fn mobiles_normalise_and_refuse_non_mobiles() {
        assert_eq!(Mobile::parse("mobile", "+86 138-0013-8000").unwrap().as_str(), "13800138000");
        assert_eq!(Mobile::parse("mobile", "8613800138000").unwrap().as_str(), "13800138000");
        assert!(Mobile::parse("mobile", "12800138000").is_err());
        assert!(Mobile::parse("mobile", "010-12345678").is_err());
        assert!(Mobile::parse("mobile", "1380013800").is_err());
    }

    #[test]
    fn emails() {
        assert!(Email::parse("email", "cfo@example.cn").is_ok());
        assert!(Email::parse("email", "no-at-sign").is_err());
        assert!(Email::parse("email", "a@b").is_err());
    }

    #[test]
    fn a_visit_moves_the_plan_on_one_cycle_but_a_late_older_one_does_not() {
        let mut plan = FollowUpPlan {
            customer_id: "c1".into(),
            owner: "staff-1".into(),
            cycle_days: 14,
            next_due: d(2026, 1, 10),
            active: true,
            last_visit: None,
            company_name: "甲".into(),
        };
        plan.record_visit(d(2026, 1, 9));
        assert_eq!((plan.last_visit, plan.next_due), (Some(d(2026, 1, 9)), d(2026, 1, 23)));
        plan.record_visit(d(2026, 1, 2));
        assert_eq!((plan.last_visit, plan.next_due), (Some(d(2026, 1, 9)), d(2026, 1, 23)), "schedule kept");
    }

    #[test]
    fn a_consent_covers_its_recipient_and_categories_while_live() {
        let c = Consent {
            id: "k1".into(),
            customer_id: "c1".into(),
            purpose: "loan".into(),
            recipient: "bank".into(),
            categories: vec![DataCategory::Profile, DataCategory::Contacts],
            granted_at: 1_000,
            expires_at: Some(5_000),
            revoked_at: None,
            recorded_by: "staff-1".into(),
            evidence: String::new(),
        };
        assert!(c.covers("bank", &[DataCategory::Contacts], 2_000));
        assert!(!c.covers("bank", &[DataCategory::Contacts, DataCategory::TaxFinancial], 2_000));
        assert!(!c.covers("other bank", &[DataCategory::Contacts], 2_000));
        assert!(!c.covers("bank", &[DataCategory::Contacts], 5_000), "expired");
        let revoked = Consent { revoked_at: Some(1_500), ..c };
        assert!(!revoked.is_live(2_000));
    }

    #[test]
    fn archived_and_erased_customers_are_not_live_and_erased_ones_are_locked() {
        let mut c = Customer { lifecycle_status: LifecycleStatus::Dormant, ..Customer::default() };
        assert!(c.is_live() && c.ensure_writable().is_ok());
        c.lifecycle_status = LifecycleStatus::Archived;
        assert!(!c.is_live() && c.ensure_writable().is_ok());
        c.lifecycle_status = LifecycleStatus::Erased;
        assert!(!c.is_live() && c.ensure_writable().is_err());
    }

    #[test]
    fn festivals_map_to_the_contract_and_back() {
        for f in Festival::ALL {
            assert_eq!(Festival::from_pb(f.to_pb()), Some(f));
        }
        assert_eq!(Festival::from_pb(pb::Festival::Unspecified), None);
    }

    #[test]
    fn festival_names_are_simplified_chinese_from_the_label_table() {
        assert_eq!(Festival::SpringFestival.name_zh(), "春节");
        assert_eq!(Festival::NationalDay.name_zh(), "国庆节");
        assert!(Festival::ALL.iter().all(|f| !f.name_zh().starts_with("FESTIVAL_")), "every festival has a label");
    }

    #[test]
    fn festival_dates_match_the_published_calendar() {
        use Festival::*;
        let cases = [
            (SpringFestival, 2025, d(2025, 1, 29)),
            (SpringFestival, 2026, d(2026, 2, 17)),
            (SpringFestival, 2027, d(2027, 2, 6)),
            (SpringFestival, 2028, d(2028, 1, 26)),
            (SpringFestival, 2029, d(2029, 2, 13)),
            (SpringFestival, 2030, d(2030, 2, 3)),
            (MidAutumn, 2025, d(2025, 10, 6)),
            (MidAutumn, 2026, d(2026, 9, 25)),
            (MidAutumn, 2027, d(2027, 9, 15)),
            (MidAutumn, 2028, d(2028, 10, 3)),
            (MidAutumn, 2029, d(2029, 9, 22)),
            (MidAutumn, 2030, d(2030, 9, 12)),
            (DragonBoat, 2025, d(2025, 5, 31)),
            (DragonBoat, 2026, d(2026, 6, 19)),
            (DragonBoat, 2027, d(2027, 6, 9)),
            (Lantern, 2025, d(2025, 2, 12)),
            (Lantern, 2026, d(2026, 3, 3)),
            (DoubleNinth, 2025, d(2025, 10, 29)),
            (DoubleNinth, 2026, d(2026, 10, 18)),
            (NewYear, 2026, d(2026, 1, 1)),
            (LabourDay, 2026, d(2026, 5, 1)),
            (NationalDay, 2026, d(2026, 10, 1)),
        ];
        for (f, y, want) in cases {
            assert_eq!(f.date(y).unwrap(), want, "{f:?} {y}");
        }
        for y in 2025..=2030 {
            for f in Festival::ALL {
                assert_eq!(f.date(y).unwrap().year(), y, "{f:?} {y}");
            }
        }
        assert!(SpringFestival.date(1800).is_err());
        assert!(NewYear.date(3000).is_err());
    }
}
