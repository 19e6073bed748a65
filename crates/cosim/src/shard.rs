//! Work items of a co-simulation run: independent layer x configuration items
//! ([`WorkItem`]); `--shard K/N` runs the share [`sop_shard::partition`] gives shard `K`,
//! balanced by the items' weights ([`Shard::select`]).

pub use sop_shard::{partition, Shard};

/// One unit of co-simulation work: one layer on one configuration, run on a fresh model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkItem {
    /// Index of the layer in the run's layer list (model order).
    pub layer: usize,
    /// Index of the configuration in the run's configuration list.
    pub config: usize,
    /// Weights the item streams (its balancing weight).
    pub weights: u64,
}
