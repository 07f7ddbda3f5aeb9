//! Masking of personal data in answers: whole values (a phone, an account,
//! an email address) and identifiers inside free text (a complaint's
//! description), so that a list or a masked read shows what a record is
//! about without the numbers that identify a person.

/// Keeps the last `keep` characters (at most half), masking the rest with
/// `*` (at most eight of them).
pub fn mask_tail(s: &str, keep: usize) -> String {
    let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.is_empty() {
        return String::new();
    }
    let keep = keep.min(chars.len() / 2);
    let masked = chars.len() - keep;
    let mut out = "*".repeat(masked.min(8));
    out.extend(&chars[masked..]);
    out
}

/// Keeps `head` leading and `tail` trailing characters.
pub fn mask_middle(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str("****");
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// An email address with its local part masked but for its first character
/// (`z***@example.cn`).
pub fn mask_email(s: &str) -> String {
    match s.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => mask_all(s),
    }
}

/// A value masked whole.
pub fn mask_all(s: &str) -> String {
    if s.is_empty() { String::new() } else { "******".into() }
}

/// Digits from which a run of letters and digits is taken for an
/// identifier: a mobile (11), a landline with its area code, an ID card or
/// a unified social credit code (18), a bank account (12–19), a tax or
/// passport number. Shorter numbers — dates, amounts, a 12366 hotline —
/// stay.
const IDENTIFIER_DIGITS: usize = 8;

fn is_email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_email_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// Full-width letters, digits, `@` and `.` (as Chinese input methods type
/// them) read as their ASCII forms.
fn normal(c: char) -> char {
    match c {
        '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' | '\u{FF20}' | '\u{FF0E}' => {
            char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
        }
        _ => c,
    }
}

/// What may stand between the digit groups of one number: spaces (also
/// the no-break and ideographic ones), hyphens and dashes, dots, slashes.
fn is_joiner(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '/' | '\u{00A0}' | '\u{3000}' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FF0D}')
}

/// Free text with the identifiers in it masked: email addresses keep their
/// first character and domain; runs of letters and digits with at least
/// eight digits (groups of three or more digits joined by a space, dash,
/// dot or slash count as one run, as in `6222 0212 3456 7890` or
/// `139-1234-5678`; full-width characters count as their ASCII forms) keep
/// their last four characters. Everything else is kept as written. Linear
/// in the text's length.
///
/// What it cannot know stays: names, addresses, numbers under eight digits
/// (a QQ number), or digit groups shorter than three.
pub fn redact(text: &str) -> String {
    let original: Vec<char> = text.chars().collect();
    let chars: Vec<char> = original.iter().copied().map(normal).collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Below this index no email address starts (a scanned run had no '@').
    let mut no_email_before = 0;
    while i < chars.len() {
        let c = chars[i];
        if i >= no_email_before && is_email_local(c) {
            let mut j = i;
            while j < chars.len() && is_email_local(chars[j]) {
                j += 1;
            }
            if j < chars.len() && chars[j] == '@' {
                let mut k = j + 1;
                while k < chars.len() && is_email_domain(chars[k]) {
                    k += 1;
                }
                let domain: String = chars[j + 1..k].iter().collect();
                let domain = domain.trim_end_matches(['.', '-']);
                if domain.contains('.') {
                    let end = j + 1 + domain.chars().count();
                    let address: String = chars[i..end].iter().collect();
                    out.push_str(&mask_email(&address));
                    i = end;
                    continue;
                }
            }
            no_email_before = j;
        }
        if !c.is_ascii_alphanumeric() {
            out.push(original[i]);
            i += 1;
            continue;
        }
        // A run of letters and digits, with digit groups joined by one joiner.
        let mut end = i;
        let mut token = String::new();
        loop {
            let group_start = end;
            while end < chars.len() && chars[end].is_ascii_alphanumeric() {
                token.push(chars[end]);
                end += 1;
            }
            let group_digits = end - group_start >= 3 && chars[group_start..end].iter().all(char::is_ascii_digit);
            let next_group = || chars[end + 1..].iter().take_while(|c| c.is_ascii_alphanumeric());
            let joins = group_digits
                && end + 1 < chars.len()
                && is_joiner(chars[end])
                && next_group().count() >= 3
                && next_group().all(char::is_ascii_digit);
            if joins {
                end += 1;
            } else {
                break;
            }
        }
        let digits = token.chars().filter(char::is_ascii_digit).count();
        if digits >= IDENTIFIER_DIGITS {
            out.push_str(&mask_tail(&token, 4));
        } else {
            out.extend(&original[i..end]);
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_values_keep_only_what_identifies() {
        assert_eq!(mask_tail("6222 0212 3456 7890", 4), "********7890");
        assert_eq!(mask_middle("91110000600037341L", 2, 4), "91****341L");
        assert_eq!(mask_all("secret notes"), "******");
        assert_eq!(mask_all(""), "");
        assert_eq!(mask_tail("12", 4), "*2");
        assert_eq!(mask_email("zhao.li@example.cn"), "z***@example.cn");
        assert_eq!(mask_middle("13912345678", 3, 4), "139****5678");
    }

    #[test]
    fn redact_masks_phones_ids_accounts_and_emails_in_text() {
        assert_eq!(redact("请回电13912345678，谢谢"), "请回电*******5678，谢谢");
        assert_eq!(redact("身份证110101199003071234"), "身份证********1234");
        assert_eq!(redact("信用代码91110000600037341L。"), "信用代码********341L。");
        assert_eq!(redact("卡号 6222 0212 3456 7890 扣款"), "卡号 ********7890 扣款");
        assert_eq!(redact("电话139-1234-5678"), "电话*******5678");
        assert_eq!(redact("座机010-62345678"), "座机*******5678");
        assert_eq!(redact("邮件 zhao.li@example.cn。"), "邮件 z***@example.cn。");
        assert_eq!(redact("手机１３９１２３４５６７８"), "手机*******5678");
        assert_eq!(redact("手机 139　1234　5678 或 139.1234.5678"), "手机 *******5678 或 *******5678");
        assert_eq!(redact("+86 13912345678"), "+86 *******5678");
        assert_eq!(redact("身份证11010119900307123X"), "身份证********123X");
    }

    #[test]
    fn redact_keeps_long_runs_of_email_characters_without_an_at_sign() {
        let long = "a.".repeat(5_000);
        assert_eq!(redact(&long), long);
        let dashes = "-".repeat(10_000);
        assert_eq!(redact(&dashes), dashes);
        assert_eq!(redact(&format!("{long}x@example.cn")), "a***@example.cn");
    }

    #[test]
    fn redact_keeps_dates_amounts_hotlines_and_words() {
        for kept in [
            "2026-11-28 申报逾期",
            "12366 转办，罚款 1500000 分",
            "客户说 Excel 表格 V2 有误",
            "第3季度 100-200 元",
            "a@b 不是邮箱",
            "",
        ] {
            assert_eq!(redact(kept), kept);
        }
    }
}
