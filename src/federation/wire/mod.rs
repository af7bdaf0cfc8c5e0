//! The federation wire: serde twins of what Corteza and fedsync peers send
//! and read. The only place that knows Corteza's JSON.
//!
//! Conventions of the wire: ids are decimal strings; payloads come in
//! `{"response": ...}`, acknowledgements as `{"success":{"message":"OK"}}`,
//! errors as `{"error":{"message": ...}}`. Our own peers add a `fedsync`
//! object to handshake bodies and answers, which Corteza ignores; its absence
//! tells us the peer is Corteza.

pub mod live;

#[cfg(test)]
mod arbitrary;
mod data;
mod envelope;
mod handshake;
mod structure;

#[cfg(test)]
pub(crate) use arbitrary::arbitrary_json;
pub use data::{
    ACTIVITY_STREAMS, ActivityLink, ActivityPage, DataAnswerIn, DataDoc, DataDocIn, DataFilter,
    DataFilterIn, IndexSet, RecordDoc, RecordIn, Text, ValueDoc,
};
pub use envelope::{
    AnswerProbe, Envelope, ErrorBody, ErrorProbe, FedsyncExtension, Message, Refused, SuccessBody,
    decode_json_body, rfc3339,
};
pub use handshake::{
    DecodedHandshake, HandshakeCompleteBody, HandshakeInitBody, MAX_HANDSHAKE_BODY, MAX_TOKEN_LEN,
    decode_handshake, decode_handshake_body, present_token,
};
pub use structure::{
    ExposedModuleDoc, ExposedModuleIn, FieldDoc, LinkDoc, LinkFilter, LinkSet, StructureDoc,
    StructureDocIn, StructureFilter, StructureFilterIn, decode_page_query,
};
