//! The page query decoder (`limit`, `lastSync`/`after`, `pageCursor`):
//! never panics; refusals are 400; what it accepts is in range, and the
//! request encoded back as a query decodes to the same request.
#![no_main]

use fedsync::federation::wire::decode_page_query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    match decode_page_query(Some(&raw)) {
        Ok(request) => {
            if let Some(t) = request.last_sync {
                assert!((0..=253_402_300_799).contains(&t));
            }
            if let Some(cursor) = &request.cursor {
                assert!(!cursor.is_empty());
            }
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            if let Some(limit) = request.limit {
                query.append_pair("limit", &limit.to_string());
            }
            if let Some(t) = request.last_sync {
                query.append_pair("lastSync", &t.to_string());
            }
            if let Some(cursor) = &request.cursor {
                query.append_pair("pageCursor", cursor);
            }
            let query = query.finish();
            let again = decode_page_query(Some(&query)).expect("an encoded request decodes");
            assert_eq!(again.limit, request.limit);
            assert_eq!(again.last_sync, request.last_sync);
            assert_eq!(again.cursor, request.cursor);
        }
        Err(refused) => {
            assert_eq!(refused.status.as_u16(), 400);
            assert!(refused.message.starts_with("request invalid: "));
        }
    }
});
