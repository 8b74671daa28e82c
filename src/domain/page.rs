use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

/// Page size when a request gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page a request may ask for; larger sizes are capped.
pub const MAX_PAGE_SIZE: u32 = 1000;

const TOKEN_PREFIX: &str = "p1:";

/// Which page of a list to read: at most `size` items after the cursor `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Number of items wanted, already capped.
    pub size: u32,
    /// Opaque position (a store sequence number) after which the page starts.
    pub after: Option<i64>,
}

impl PageRequest {
    /// Reads `page_size` and `page_token` of a list request.
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self> {
        let size = match page_size {
            s if s < 0 => {
                return Err(Error::invalid(
                    "page_size",
                    format!("must not be negative, got {s}"),
                ));
            }
            0 => DEFAULT_PAGE_SIZE,
            s => (s as u32).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(decode_token(page_token).ok_or_else(|| {
                Error::invalid(
                    "page_token",
                    format!("{page_token:?} is not a token this service issued"),
                )
            })?)
        };
        Ok(PageRequest { size, after })
    }

    /// The first page of `size` items.
    pub fn first(size: u32) -> Self {
        PageRequest { size, after: None }
    }
}

fn decode_token(token: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(TOKEN_PREFIX)?.parse().ok()
}

/// One page of a list and the cursor of the next one.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Cursor of the next page; `None` on the last page.
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// The `next_page_token` of a list response: empty on the last page.
    pub fn next_token(&self) -> String {
        self.next
            .map(|cursor| URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{cursor}")))
            .unwrap_or_default()
    }

    /// Converts every item, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_cap() {
        assert_eq!(PageRequest::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::parse(5000, "").unwrap().size, MAX_PAGE_SIZE);
        assert_eq!(PageRequest::parse(7, "").unwrap().size, 7);
        assert!(PageRequest::parse(-1, "").is_err());
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        let page = Page {
            items: vec![1],
            next: Some(42),
        };
        let req = PageRequest::parse(10, &page.next_token()).unwrap();
        assert_eq!(req.after, Some(42));
        assert!(PageRequest::parse(10, "not-a-token").is_err());
        let last: Page<u8> = Page {
            items: vec![],
            next: None,
        };
        assert_eq!(last.next_token(), "");
    }
}
