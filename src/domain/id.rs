//! Corteza-style 64-bit ids: time-ordered, unique across replicas.
//!
//! Layout (63 bits, so ids fit a signed BIGINT and stay below 2^63 like
//! Corteza's): 41 bits of milliseconds since 2020-01-01T00:00:00Z, 10 bits of
//! instance number, 12 bits of sequence. Every process takes its own instance
//! number from a lease in the store, so replicas sharing one PostgreSQL
//! database never hand out the same id (Corteza instances that share a machine
//! id do). Ids travel as decimal strings in JSON.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// Milliseconds between the Unix epoch and 2020-01-01T00:00:00Z.
pub const EPOCH_MS: u64 = 1_577_836_800_000;
/// Instance numbers are 0..=MAX_INSTANCE.
pub const MAX_INSTANCE: u16 = (1 << INSTANCE_BITS) - 1;
const INSTANCE_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
const MAX_SEQUENCE: u16 = (1 << SEQUENCE_BITS) - 1;

/// A non-zero 64-bit id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(u64);

impl Id {
    /// Returns `None` for zero, which is never a valid id.
    pub fn new(value: u64) -> Option<Id> {
        (value != 0).then_some(Id(value))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// The id as stored in a signed BIGINT column. Ids are below 2^63.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// The id from a BIGINT column; `None` for zero or negative values.
    pub fn from_i64(value: i64) -> Option<Id> {
        u64::try_from(value).ok().and_then(Id::new)
    }

    /// Milliseconds since the Unix epoch at which the id was made.
    pub fn unix_millis(self) -> u64 {
        (self.0 >> (INSTANCE_BITS + SEQUENCE_BITS)) + EPOCH_MS
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not an id: ids are non-zero decimal numbers below 2^64 with no sign, spaces or leading zeros"
)]
pub struct ParseIdError {
    pub input: String,
}

impl FromStr for Id {
    type Err = ParseIdError;

    /// Accepts only the canonical form: ASCII digits, no sign, no leading
    /// zero, no surrounding space, non-zero, fits in u64.
    fn from_str(s: &str) -> Result<Id, ParseIdError> {
        let err = || ParseIdError {
            input: s.chars().take(64).collect(),
        };
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('0') {
            return Err(err());
        }
        s.parse::<u64>().ok().and_then(Id::new).ok_or_else(err)
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Id);

        impl $name {
            pub fn get(self) -> u64 {
                self.0.get()
            }
            pub fn as_i64(self) -> i64 {
                self.0.as_i64()
            }
            pub fn from_i64(value: i64) -> Option<Self> {
                Id::from_i64(value).map(Self)
            }
            pub fn from_u64(value: u64) -> Option<Self> {
                Id::new(value).map(Self)
            }
        }

        impl From<Id> for $name {
            fn from(id: Id) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                s.parse().map(Self)
            }
        }
    };
}

typed_id!(
    /// Our local id for a peer node (Corteza's `nodeID`).
    NodeId
);
typed_id!(
    /// The `jti` of a token we issued (admin or peer).
    TokenId
);
typed_id!(
    /// An audit event.
    AuditEventId
);

/// The lease on an instance number held by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLease {
    pub instance_no: u16,
    pub owner: String,
    pub expires_at: super::Timestamp,
    /// The last id millisecond a previous holder recorded; ids restart above it.
    pub last_id_ms: u64,
}

/// Hands out ids for one instance number. Thread-safe and monotonic: when the
/// clock goes back, ids continue from the last millisecond used.
#[derive(Debug)]
pub struct IdGenerator {
    instance_no: u16,
    state: Mutex<GeneratorState>,
}

#[derive(Debug)]
struct GeneratorState {
    last_ms: u64,
    sequence: u16,
}

impl IdGenerator {
    /// `start_after_ms` is a Unix millisecond the new ids must be above (the
    /// lease's `last_id_ms`), so a restart never repeats an earlier id.
    pub fn new(instance_no: u16, start_after_ms: u64) -> IdGenerator {
        assert!(instance_no <= MAX_INSTANCE, "instance number out of range");
        IdGenerator {
            instance_no,
            state: Mutex::new(GeneratorState {
                last_ms: start_after_ms.max(EPOCH_MS),
                sequence: MAX_SEQUENCE,
            }),
        }
    }

    pub fn instance_no(&self) -> u16 {
        self.instance_no
    }

    /// The next id at the wall-clock time.
    pub fn next_id(&self) -> Id {
        self.next_at(now_unix_ms())
    }

    /// The next id at `now_ms` (Unix milliseconds). When the 4096 ids of a
    /// millisecond are used up, the id borrows the next millisecond.
    pub fn next_at(&self, now_ms: u64) -> Id {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now_ms > state.last_ms {
            state.last_ms = now_ms;
            state.sequence = 0;
        } else if state.sequence < MAX_SEQUENCE {
            state.sequence += 1;
        } else {
            state.last_ms += 1;
            state.sequence = 0;
        }
        let ms = state.last_ms - EPOCH_MS;
        let value = (ms << (INSTANCE_BITS + SEQUENCE_BITS))
            | (u64::from(self.instance_no) << SEQUENCE_BITS)
            | u64::from(state.sequence);
        Id(value)
    }

    /// The last millisecond used, to be saved with the lease.
    pub fn last_ms(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).last_ms
    }
}

fn now_unix_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parse(input: &str, expected: Option<u64>) {
        let got = input.parse::<Id>().ok().map(Id::get);
        assert_eq!(got, expected, "parsing {input:?}");
    }

    #[test]
    fn parse_accepts_only_canonical_decimal() {
        check_parse("42", Some(42));
        check_parse("523615093115650149", Some(523615093115650149));
        check_parse("18446744073709551615", Some(u64::MAX));
        check_parse("18446744073709551616", None);
        check_parse("0", None);
        check_parse("-1", None);
        check_parse("+42", None);
        check_parse(" 42", None);
        check_parse("42 ", None);
        check_parse("0x2a", None);
        check_parse("042", None);
        check_parse("４２", None);
        check_parse("", None);
    }

    #[test]
    fn ids_are_time_ordered_and_unique_within_a_millisecond() {
        let generator = IdGenerator::new(3, 0);
        let t = EPOCH_MS + 1_000;
        let ids: Vec<Id> = (0..5000).map(|_| generator.next_at(t)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids, "ids must be strictly increasing");
        // 4096 fit in the millisecond, the rest borrowed the next one.
        assert_eq!(ids[4095].unix_millis(), t);
        assert_eq!(ids[4096].unix_millis(), t + 1);
    }

    #[test]
    fn clock_going_back_does_not_repeat_ids() {
        let generator = IdGenerator::new(1, 0);
        let a = generator.next_at(EPOCH_MS + 10_000);
        let b = generator.next_at(EPOCH_MS + 5_000);
        assert!(b > a);
    }

    #[test]
    fn restart_continues_above_the_leased_high_water_mark() {
        let before = IdGenerator::new(7, 0).next_at(EPOCH_MS + 9_000);
        let after = IdGenerator::new(7, EPOCH_MS + 9_000).next_at(EPOCH_MS + 2_000);
        assert!(after > before);
    }

    #[test]
    fn instances_never_collide() {
        let a = IdGenerator::new(1, 0).next_at(EPOCH_MS + 77);
        let b = IdGenerator::new(2, 0).next_at(EPOCH_MS + 77);
        assert_ne!(a, b);
        assert_eq!(a.unix_millis(), b.unix_millis());
    }

    #[test]
    fn ids_of_today_fit_a_signed_bigint() {
        // 2089 is where 41 bits of milliseconds end.
        let far = IdGenerator::new(MAX_INSTANCE, 0).next_at(EPOCH_MS + (1u64 << 41) - 1);
        assert!(far.get() <= i64::MAX as u64);
        assert_eq!(Id::from_i64(far.as_i64()), Some(far));
    }
}
