//! The one place where errors become gRPC statuses.

use tonic::Status;

use crate::store::StoreError;

pub fn from_store(error: StoreError) -> Status {
    match error {
        StoreError::Unavailable(_) => Status::unavailable(error.to_string()),
        StoreError::NotFound(_) => Status::not_found(error.to_string()),
        StoreError::Conflict(_) => Status::already_exists(error.to_string()),
        StoreError::Migration(_) | StoreError::Corrupt(_) | StoreError::Database(_) => {
            tracing::error!(error = %error, "store error in admin request");
            Status::internal(error.to_string())
        }
    }
}
