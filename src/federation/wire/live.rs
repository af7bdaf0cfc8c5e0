//! Live changes on the wire (fedsync peers only): a change notice names
//! the sender's exposed modules whose records changed, and whether what it
//! exposes changed; the capability document says what a node can do.

use serde::{Deserialize, Serialize};

use super::{FedsyncExtension, Refused};
use crate::domain::Id;
use crate::sync::live::{ChangeNotice, MAX_NOTICE_MODULES};

/// `POST /federation/nodes/{id}/fedsync/changes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChangeNoticeBody {
    /// Exposed module ids, as decimal strings.
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default)]
    pub structure: bool,
}

impl ChangeNoticeBody {
    pub fn of(notice: &ChangeNotice) -> ChangeNoticeBody {
        ChangeNoticeBody {
            modules: notice.modules.iter().map(Id::to_string).collect(),
            structure: notice.structure,
        }
    }

    /// The notice, or 400 naming what is wrong.
    pub fn decode(self) -> Result<ChangeNotice, Refused> {
        if self.modules.len() > MAX_NOTICE_MODULES {
            return Err(Refused::new(
                http::StatusCode::BAD_REQUEST,
                "request invalid: a notice names at most 1000 modules",
            ));
        }
        let modules = self
            .modules
            .iter()
            .map(|m| m.parse::<Id>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                Refused::new(
                    http::StatusCode::BAD_REQUEST,
                    "request invalid: modules must be module ids",
                )
            })?;
        Ok(ChangeNotice {
            modules,
            structure: self.structure,
        })
    }
}

/// `GET /federation/nodes/{id}/fedsync/capabilities`: `{"response": ...}`.
pub type CapabilitiesDoc = FedsyncExtension;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_bad_ones_are_named() {
        let notice = ChangeNotice {
            modules: vec![Id::new(7).unwrap(), Id::new(523615093115650149).unwrap()],
            structure: true,
        };
        let text = serde_json::to_string(&ChangeNoticeBody::of(&notice)).unwrap();
        assert_eq!(
            text,
            r#"{"modules":["7","523615093115650149"],"structure":true}"#
        );
        let back: ChangeNoticeBody = serde_json::from_str(&text).unwrap();
        assert_eq!(back.decode().unwrap(), notice);
        let bad: ChangeNoticeBody = serde_json::from_str(r#"{"modules":["x"]}"#).unwrap();
        assert!(bad.decode().unwrap_err().message.contains("module ids"));
        assert!(serde_json::from_str::<ChangeNoticeBody>(r#"{"records":[]}"#).is_err());
        let many = ChangeNoticeBody {
            modules: vec!["1".into(); 1001],
            structure: false,
        };
        assert!(many.decode().is_err());
    }
}
