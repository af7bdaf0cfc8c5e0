//! `RecordService`: records of the embedded data plane, over gRPC. Lists
//! stream page by page, imports arrive as a client stream with one
//! transaction per message, so neither grows with the number of records.

use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::node::writer;
use super::proto::{self, v1};
use super::server::AdminState;
use super::status::from_record;
use crate::domain::Id;
use crate::sync::records::check_values;

/// Records per page of a `ListRecords` stream.
const LIST_PAGE: u32 = 500;
/// Rows one import message may carry.
pub const MAX_IMPORT_BATCH: usize = 5_000;

pub struct RecordApi {
    state: AdminState,
}

impl RecordApi {
    pub fn new(state: AdminState) -> RecordApi {
        RecordApi { state }
    }
}

fn given(values: Vec<v1::RecordValue>) -> Vec<(String, Vec<String>)> {
    values.into_iter().map(|v| (v.name, v.values)).collect()
}

fn record_id(id: u64) -> Result<Id, Status> {
    Id::new(id).ok_or_else(|| Status::invalid_argument("id is required (a non-zero record id)"))
}

#[tonic::async_trait]
impl v1::record_service_server::RecordService for RecordApi {
    #[tracing::instrument(skip_all)]
    async fn create_record(
        &self,
        request: Request<v1::WriteRecordRequest>,
    ) -> Result<Response<v1::Record>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let records = &self.state.records;
        let module = records.module(&r.module).await.map_err(from_record)?;
        let record = records
            .create(&module.id.to_string(), given(r.values))
            .await
            .map_err(from_record)?;
        Ok(Response::new(proto::record(&record, &module)))
    }

    #[tracing::instrument(skip_all, fields(record_id = request.get_ref().id))]
    async fn update_record(
        &self,
        request: Request<v1::WriteRecordRequest>,
    ) -> Result<Response<v1::Record>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let id = record_id(r.id)?;
        let records = &self.state.records;
        let module = records.module(&r.module).await.map_err(from_record)?;
        let record = records
            .update(&module.id.to_string(), id, given(r.values))
            .await
            .map_err(from_record)?;
        Ok(Response::new(proto::record(&record, &module)))
    }

    #[tracing::instrument(skip_all, fields(record_id = request.get_ref().id))]
    async fn delete_record(
        &self,
        request: Request<v1::RecordRef>,
    ) -> Result<Response<v1::Record>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let id = record_id(r.id)?;
        let records = &self.state.records;
        let module = records.module(&r.module).await.map_err(from_record)?;
        let record = records
            .delete(&module.id.to_string(), id)
            .await
            .map_err(from_record)?;
        Ok(Response::new(proto::record(&record, &module)))
    }

    type ListRecordsStream = ReceiverStream<Result<v1::Record, Status>>;

    #[tracing::instrument(skip_all)]
    async fn list_records(
        &self,
        request: Request<v1::ListRecordsRequest>,
    ) -> Result<Response<Self::ListRecordsStream>, Status> {
        let r = request.into_inner();
        let records = self.state.records.clone();
        let module = records.module(&r.module).await.map_err(from_record)?;
        // One page when asked for (`limit`), else every record.
        let (page_size, one_page) = match r.limit {
            0 => (LIST_PAGE, false),
            limit => (limit.min(LIST_PAGE), true),
        };
        // A small buffer: the reader's pace sets ours.
        let (tx, rx) = tokio::sync::mpsc::channel(LIST_PAGE as usize);
        tokio::spawn(async move {
            let mut after = Id::new(r.after);
            loop {
                let page = match records
                    .list_page(&module, r.include_deleted, after, page_size)
                    .await
                {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(from_record(e))).await;
                        return;
                    }
                };
                let Some(last) = page.last() else { return };
                after = Some(last.id);
                let full = page.len() == page_size as usize;
                for record in &page {
                    if tx.send(Ok(proto::record(record, &module))).await.is_err() {
                        return; // the reader went away
                    }
                }
                if !full || one_page {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(skip_all)]
    async fn import_records(
        &self,
        request: Request<Streaming<v1::ImportRecordsRequest>>,
    ) -> Result<Response<v1::ImportRecordsResponse>, Status> {
        writer(&request)?;
        let mut stream = request.into_inner();
        let records = &self.state.records;
        let mut module = None;
        let mut imported = 0u64;
        let mut batches = 0u64;
        while let Some(message) = stream.next().await {
            let message = message?;
            let current = match module.take() {
                Some(m) => m,
                None if message.module.is_empty() => {
                    return Err(Status::invalid_argument(
                        "the first import message must name the module",
                    ));
                }
                None => records.module(&message.module).await.map_err(from_record)?,
            };
            let module = &*module.insert(current);
            if message.rows.len() > MAX_IMPORT_BATCH {
                return Err(Status::invalid_argument(format!(
                    "batch {} has {} rows; at most {MAX_IMPORT_BATCH} per message",
                    batches + 1,
                    message.rows.len()
                )));
            }
            let mut rows = Vec::with_capacity(message.rows.len());
            for (i, row) in message.rows.into_iter().enumerate() {
                let values = check_values(module, given(row.values)).map_err(|e| {
                    Status::invalid_argument(format!(
                        "batch {} row {}: {e} ({imported} records were imported before it)",
                        batches + 1,
                        i + 1
                    ))
                })?;
                rows.push(values);
            }
            imported += records.import(module, rows).await.map_err(from_record)? as u64;
            batches += 1;
        }
        if module.is_none() {
            return Err(Status::invalid_argument("the import stream was empty"));
        }
        tracing::info!(imported, batches, "records imported");
        Ok(Response::new(v1::ImportRecordsResponse {
            imported,
            batches,
        }))
    }
}
