//! One opaque page-token format for every list: base64url of
//! `{"l": list, "k": [keys of the last row]}`. A token from another list, or
//! one a client made up, is refused with a violation on `page_token`.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Serialize, Deserialize)]
struct Token {
    l: String,
    k: Vec<String>,
}

/// The token that continues `list` after the row whose sort keys are `keys`.
pub fn token(list: &str, keys: &[&str]) -> String {
    let t = Token { l: list.to_owned(), k: keys.iter().map(|k| (*k).to_owned()).collect() };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t).unwrap_or_default())
}

/// The keys a token of `list` carries; `None` for the first page. A token
/// must carry exactly `arity` keys.
pub fn keys(list: &str, arity: usize, raw: &str) -> Result<Option<Vec<String>>, Error> {
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token", "is not a page token returned by this list");
    if raw.len() > 2048 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let t: Token = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if t.l != list || t.k.len() != arity {
        return Err(bad());
    }
    Ok(Some(t.k))
}

/// The single key of a one-key token (`after id`).
pub fn after(list: &str, raw: &str) -> Result<Option<String>, Error> {
    Ok(keys(list, 1, raw)?.and_then(|mut k| k.pop()))
}

/// The cursor of a list ordered newest first by (time, id): the last row's
/// time (Unix ms) and id; `None` for the first page.
pub fn time_and_id(list: &str, raw: &str) -> Result<Option<(i64, String)>, Error> {
    let Some(mut k) = keys(list, 2, raw)? else { return Ok(None) };
    let id = k.pop().unwrap_or_default();
    let at = k
        .pop()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| Error::invalid("page_token", "is not a page token returned by this list"))?;
    Ok(Some((at, id)))
}

/// The next page's token of a (time, id) list.
pub fn next_time_and_id<T>(list: &str, rows: &[T], more: bool, key: impl Fn(&T) -> (i64, &str)) -> String {
    match rows.last() {
        Some(last) if more => {
            let (at, id) = key(last);
            token(list, &[&at.to_string(), id])
        }
        _ => String::new(),
    }
}

/// Cuts a page fetched with `size + 1` rows: the page, and whether more follow.
pub fn split<T>(mut rows: Vec<T>, size: i64) -> (Vec<T>, bool) {
    let size = usize::try_from(size).unwrap_or(0);
    let more = rows.len() > size;
    rows.truncate(size);
    (rows, more)
}

/// The next page's token: from the last row when more follow, else empty.
pub fn next<T>(list: &str, rows: &[T], more: bool, key: impl Fn(&T) -> String) -> String {
    match rows.last() {
        Some(last) if more => token(list, &[&key(last)]),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_belong_to_one_list() {
        let t = token("tickets", &["0193-a"]);
        assert_eq!(after("tickets", &t).ok().flatten().as_deref(), Some("0193-a"));
        assert!(after("customers", &t).is_err());
        assert!(after("tickets", "bm90IGEgdG9rZW4").is_err());
        assert!(after("tickets", "%%%").is_err());
        assert_eq!(after("tickets", "").ok(), Some(None));
        assert!(keys("tickets", 2, &t).is_err());
    }

    #[test]
    fn split_and_next_say_whether_more_rows_follow() {
        let (rows, more) = split(vec![1, 2, 3], 2);
        assert_eq!((rows.as_slice(), more), (&[1, 2][..], true));
        assert_eq!(after("n", &next("n", &rows, more, ToString::to_string)).ok().flatten().as_deref(), Some("2"));
        let (rows, more) = split(vec![1], 2);
        assert!(!more && next("n", &rows, more, ToString::to_string).is_empty());
    }
}
