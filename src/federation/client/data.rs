//! Records from a peer (`DataPeer`): a page of an exposed module's
//! records, and the data document read the way a destination must.

use async_trait::async_trait;
use http::Method;

use super::PeerClient;
use super::request::{endpoint, sanitize};
use crate::domain::{Id, NodeId};
use crate::federation::wire::DataAnswerIn;
use crate::sync::{DataPeer, PeerError, RecordsPage, RecordsRequest, RemoteRecord, RemoteValue};

#[async_trait]
impl DataPeer for PeerClient {
    async fn records_page(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        exposed_module_id: Id,
        bearer: &str,
        request: &RecordsRequest,
    ) -> Result<RecordsPage, PeerError> {
        let path = format!("/nodes/{shared_node_id}/modules/{exposed_module_id}/records/");
        let mut url = url::Url::parse(&endpoint(base_url, &path))
            .map_err(|e| PeerError::Protocol(format!("bad peer URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &request.limit.to_string());
            if let Some(last_sync) = request.last_sync {
                query.append_pair("lastSync", &last_sync.to_string());
            }
            if let Some(cursor) = &request.cursor {
                query.append_pair("pageCursor", cursor);
            }
            if request.include_total {
                query.append_pair("incTotal", "true");
            }
        }
        let (status, body) = self
            .call::<()>(Method::GET, url.as_str(), Some(bearer), None)
            .await?;
        // A data document is read in one pass; any other answer (a
        // refusal, Corteza's HTTP-200 error) is judged as every answer is.
        let page = parse_records_page(&body);
        if status == http::StatusCode::OK && page.is_ok() {
            return page;
        }
        PeerClient::judge(status, &body)?;
        page
    }
}

/// Reads a data document the way a destination must: `response.set` with
/// `recordID`, `values` and the timestamps, and `response.filter.nextPage`.
pub fn parse_records_page(body: &[u8]) -> Result<RecordsPage, PeerError> {
    // UTF-8 checked once for the whole document (vectorised), not string
    // by string as `from_slice` does.
    let text = std::str::from_utf8(body)
        .map_err(|e| PeerError::Protocol(format!("the data document is not UTF-8: {e}")))?;
    let doc: DataAnswerIn = serde_json::from_str(text)
        .map_err(|e| PeerError::Protocol(format!("the data document does not decode: {e}")))?;
    if doc.error.is_some() {
        return Err(PeerError::Protocol(
            "the data document carries an error".into(),
        ));
    }
    let time = |what: &str,
                text: &Option<crate::federation::wire::Text<'_>>|
     -> Result<Option<crate::domain::Timestamp>, PeerError> {
        match text.as_ref().map(|t| t.as_str()) {
            None | Some("") => Ok(None),
            Some(t) => chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| Some(t.with_timezone(&chrono::Utc)))
                .map_err(|_| {
                    PeerError::Protocol(format!("{what} `{}` is not RFC 3339", sanitize(t)))
                }),
        }
    };
    let mut records = Vec::new();
    for r in doc.response.set.unwrap_or_default() {
        records.push(RemoteRecord {
            id: r.record_id.as_str().parse::<Id>().map_err(|_| {
                PeerError::Protocol(format!(
                    "recordID `{}` is not an id",
                    sanitize(r.record_id.as_str())
                ))
            })?,
            values: r
                .values
                .unwrap_or_default()
                .into_iter()
                .map(|v| RemoteValue {
                    name: v.name,
                    value: v.value,
                    yours: v.yours,
                })
                .collect(),
            created_at: time("createdAt", &r.created_at)?,
            updated_at: time("updatedAt", &r.updated_at)?,
            deleted_at: time("deletedAt", &r.deleted_at)?,
        });
    }
    let filter = doc.response.filter.unwrap_or_default();
    Ok(RecordsPage {
        records,
        next_cursor: filter.next_page.filter(|c| !c.is_empty()),
        resume_cursor: filter.resume.filter(|c| !c.is_empty()),
        total: filter.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_times_parse_borrowed_or_escaped() {
        // Go's encoder may escape any character; a JSON string with an
        // escape cannot be borrowed from the document and is copied.
        let body = br#"{"response":{"filter":{"nextPage":"n1"},"set":[
            {"recordID":"42","values":[{"name":"a","value":"x"}],
             "createdAt":"2024-01-02T03:04:05Z","updatedAt":null},
            {"recordID":"\u0034\u0033","createdAt":"2024-01-02T03:04:0\u0035Z",
             "deletedAt":""}]}}"#;
        let page = parse_records_page(body).unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].id.get(), 42);
        assert_eq!(page.records[0].values[0].value.as_deref(), Some("x"));
        assert_eq!(page.records[0].updated_at, None);
        assert_eq!(page.records[1].id.get(), 43);
        assert_eq!(page.records[0].created_at, page.records[1].created_at);
        assert_eq!(page.records[1].deleted_at, None);
        assert_eq!(page.next_cursor.as_deref(), Some("n1"));
    }

    #[test]
    fn a_document_that_is_not_utf8_is_refused_by_name() {
        let body = b"{\"response\":{\"set\":[{\"recordID\":\"1\xff\"}]}}";
        let err = parse_records_page(body).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
    }

    #[test]
    fn a_bad_time_is_named() {
        let body = br#"{"response":{"set":[{"recordID":"1","updatedAt":"yesterday"}]}}"#;
        let err = parse_records_page(body).unwrap_err().to_string();
        assert!(err.contains("updatedAt `yesterday`"), "{err}");
    }
}
