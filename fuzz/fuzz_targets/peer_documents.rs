//! What a peer sends us: the data (records page) and structure documents
//! and `Retry-After`. Never panic; ids are canonical, cursors non-empty,
//! error messages bounded.
#![no_main]

use fedsync::federation::client::{parse_records_page, parse_retry_after, parse_structure_page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_records_page(data) {
        Ok(page) => {
            assert!(page.next_cursor.as_ref().is_none_or(|c| !c.is_empty()));
            assert!(page.resume_cursor.as_ref().is_none_or(|c| !c.is_empty()));
            for record in &page.records {
                assert!(record.id.get() > 0);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match parse_structure_page(data) {
        Ok(page) => {
            assert!(page.next_cursor.as_ref().is_none_or(|c| !c.is_empty()));
            for module in &page.modules {
                assert!(module.external_id.get() > 0);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(text) = std::str::from_utf8(data)
        && text.len() < 256
    {
        let now = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("a time");
        let _ = parse_retry_after(text, now);
    }
});
