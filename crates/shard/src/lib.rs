//! `sop-shard`: `--shard K/N` ([`Shard`]) over a list of independent weighted work items (a
//! co-simulation's layer x configuration items, a quantization's layers): shard `K` runs the
//! items that [`partition`] gives it, balanced by weights.
//!
//! The partition is the greedy longest-processing-time rule: items sorted by weight, largest
//! first (ties: the item listed first), each placed on the least-loaded shard so far (ties:
//! the lowest shard number). It depends only on the item weights and `N`, so every shard of
//! a CI matrix computes the same partition on its own, and the heaviest shard exceeds the
//! lightest by at most the largest item.

#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

/// `K/N`: shard `K` (from 1) of `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `1..=count`.
    pub index: u32,
    /// Number of shards, at least 1.
    pub count: u32,
}

impl Shard {
    /// The whole run (shard 1 of 1).
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// True for `1/1`.
    pub fn is_all(&self) -> bool {
        self.count == 1
    }

    /// The items of `items` this shard runs (balanced by `weight`), in their listed order.
    pub fn select<'a, T>(&self, items: &'a [T], weight: impl Fn(&T) -> u64) -> Vec<&'a T> {
        let weights: Vec<u64> = items.iter().map(weight).collect();
        self.indices(&weights).into_iter().map(|i| &items[i]).collect()
    }

    /// The indices (ascending) of the items of weights `weights` that this shard runs.
    pub fn indices(&self, weights: &[u64]) -> Vec<usize> {
        partition(weights, self.count as usize)
            .into_iter()
            .enumerate()
            .filter(|(_, s)| *s == (self.index - 1) as usize)
            .map(|(i, _)| i)
            .collect()
    }
}

impl Default for Shard {
    /// [`Shard::ALL`].
    fn default() -> Shard {
        Shard::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `K/N` with `1 <= K <= N`, e.g. `2/4`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not K/N (shard K of N, e.g. 1/2)"))?;
        let num = |t: &str, what: &str| -> Result<u32, String> {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{s}`: {what} `{t}` is not a whole number (expected K/N, e.g. 1/2)"))
        };
        let (index, count) = (num(k, "K")?, num(n, "N")?);
        if count == 0 {
            return Err(format!("`{s}`: N must be at least 1"));
        }
        if index == 0 || index > count {
            return Err(format!("`{s}`: K must be between 1 and N = {count}"));
        }
        Ok(Shard { index, count })
    }
}

/// The shard (`0..n`) of each item with weight `weights[i]`: items by weight, largest first
/// (ties: lower index first), each onto the least-loaded shard (ties: the lower shard).
/// Deterministic; each shard's load is within the largest weight of every other's.
///
/// # Panics
/// When `n` is 0.
pub fn partition(weights: &[u64], n: usize) -> Vec<usize> {
    assert!(n > 0, "partition into 0 shards");
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    let mut load = vec![0u64; n];
    let mut owner = vec![0usize; weights.len()];
    for i in order {
        let s = (0..n).min_by_key(|&s| (load[s], s)).expect("n > 0");
        load[s] += weights[i];
        owner[i] = s;
    }
    owner
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>(), Ok(Shard::ALL));
        assert_eq!(Shard { index: 3, count: 7 }.to_string(), "3/7");
        for bad in ["0/2", "3/2", "x", "1/0", "0/0", "1/x", "-1/2", "1/2/3", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn largest_first_onto_the_least_loaded() {
        // 7 -> s0, 5 -> s1, 4 -> s1 (5 < 7), 3 -> s0 (7 < 9), 1 -> s1 (9 < 10).
        assert_eq!(partition(&[3, 7, 1, 5, 4], 2), vec![0, 0, 1, 1, 1]);
        // Equal weights: index order, round robin over the shards.
        assert_eq!(partition(&[2, 2, 2, 2], 3), vec![0, 1, 2, 0]);
        assert_eq!(partition(&[], 3), Vec::<usize>::new());
    }

    proptest! {
        #[test]
        fn every_item_in_exactly_one_shard_balanced_and_deterministic(
            weights in proptest::collection::vec(0u64..1_000_000, 0..60),
            n in 1usize..9,
        ) {
            let owner = partition(&weights, n);
            prop_assert_eq!(&owner, &partition(&weights, n));
            prop_assert_eq!(owner.len(), weights.len());
            prop_assert!(owner.iter().all(|&s| s < n));
            let items: Vec<(usize, u64)> = weights.iter().copied().enumerate().collect();
            // The shards' selections are disjoint and cover every item, in listed order.
            let mut seen = vec![0u32; items.len()];
            let mut loads = Vec::new();
            for k in 1..=n as u32 {
                let shard = Shard { index: k, count: n as u32 };
                let sel = shard.select(&items, |i| i.1);
                prop_assert!(sel.windows(2).all(|w| w[0].0 < w[1].0));
                prop_assert_eq!(sel.iter().map(|i| i.0).collect::<Vec<_>>(), shard.indices(&weights));
                for it in &sel {
                    seen[it.0] += 1;
                }
                loads.push(sel.iter().map(|i| i.1).sum::<u64>());
            }
            prop_assert!(seen.iter().all(|&c| c == 1));
            let largest = weights.iter().copied().max().unwrap_or(0);
            let (lo, hi) = (*loads.iter().min().unwrap(), *loads.iter().max().unwrap());
            prop_assert!(hi - lo <= largest, "loads {:?}, largest item {}", loads, largest);
        }
    }
}
