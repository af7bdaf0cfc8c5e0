//! Hash maps keyed by ids, for the hot path of a sync's page (a few
//! lookups per record): std's SipHash was 2.6% of the destination's
//! runtime in the initial sync's profile (issue 30). The keys of one map
//! are at most a page's ids, so a peer that picks colliding ids slows only
//! its own page, which the page size bounds.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::Id;

/// A folded multiply of the key: both halves of the 128-bit product mixed,
/// so ids that differ only in high bits (snowflakes of one millisecond
/// apart) land in different buckets too.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, i: u64) {
        let product = u128::from(self.0 ^ i) * u128::from(K);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type IdMap<V> = HashMap<Id, V, BuildHasherDefault<IdHasher>>;
pub type IdSet = HashSet<Id, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(id: u64) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(Id::new(id).unwrap())
    }

    #[test]
    fn ids_apart_only_in_high_bits_spread_over_the_low_bits() {
        // Snowflakes with the same low 22 bits: one a millisecond.
        let buckets: HashSet<u64> = (1..=1024u64).map(|ms| hash(ms << 22) & 1023).collect();
        assert!(buckets.len() > 600, "{} buckets of 1024", buckets.len());
        let tops: HashSet<u64> = (1..=1024u64).map(|ms| hash(ms << 22) >> 57).collect();
        assert!(tops.len() > 100, "{} top-7-bit values of 128", tops.len());
    }

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut map = IdMap::default();
        for i in 1..=5000u64 {
            map.insert(Id::new(i << 20).unwrap(), i);
        }
        assert_eq!(map.len(), 5000);
        assert_eq!(map.get(&Id::new(77 << 20).unwrap()), Some(&77));
        assert_eq!(map.get(&Id::new(77).unwrap()), None);
    }
}
