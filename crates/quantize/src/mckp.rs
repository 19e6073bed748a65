//! Multiple-choice knapsack (MCKP) promotion: one option per layer, minimum total distortion
//! under a bit budget.
//!
//! Each layer offers a menu of [`Choice`]s (exact stored bits, distortion). With `W` the total
//! number of weights and `t` the target average bits per weight, the budget is
//! `B = floor(t * W)` bits and a selection is feasible when its total bits are `<= B`.
//!
//! * [`solve_exact`]: dynamic programming over a discretized cost. Each option's cost above its
//!   layer's cheapest option, `bits - min_bits`, is rounded **up** to units of
//!   `q = max(1, ceil(S / max_units))` bits, where `S = B - sum(min_bits)` is the contested
//!   slack; the DP capacity is `floor(S / q)` units, so any selection the DP accepts has real
//!   total bits `<= sum(min_bits) + q * units <= B`: the answer respects the budget exactly in
//!   real bits. With `q = 1` (small problems) the DP is exactly
//!   optimal; with `q > 1` it is optimal among selections whose rounded cost fits, which loses
//!   at most `q` bits of budget per layer (documented in `docs/quantizer.md`).
//! * [`solve_greedy`]: the Lagrangian / convex-hull greedy: start every layer at its cheapest
//!   option, walk each layer's lower convex hull of (bits, distortion), and repeatedly take the
//!   upgrade with the largest distortion decrease per bit that still fits the budget.
//!
//! Both return a [`Selection`]; a target below the cheapest or above the dearest total is a
//! [`MckpError::Infeasible`].

use std::fmt;

/// One entry of a layer's menu.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice {
    /// Exact stored bits of the layer with this option.
    pub bits: u64,
    /// Distortion (non-negative, finite) of the layer with this option; lower is better.
    pub distortion: f64,
}

/// A chosen option per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Index into each layer's menu.
    pub choice: Vec<usize>,
    /// Total bits of the selection.
    pub bits: u64,
    /// Total distortion of the selection.
    pub distortion: f64,
    /// The budget in bits, `floor(target * weights)`.
    pub budget: u64,
    /// The cost quantum `q` of the DP (1 for the greedy).
    pub quantum: u64,
}

impl Selection {
    /// Achieved average bits per weight.
    pub fn bpw(&self, weights: u64) -> f64 {
        self.bits as f64 / weights.max(1) as f64
    }
}

/// Why an MCKP cannot be solved.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MckpError {
    /// No layers, an empty menu, zero weights, or a non-finite / negative distortion.
    #[error("invalid MCKP input: {0}")]
    Invalid(String),
    /// The target average bits per weight cannot be met.
    #[error(
        "target {target} bpw is infeasible: the menus span {min_bpw:.6} (cheapest option everywhere) \
         to {max_bpw:.6} bpw (dearest option everywhere); choose a target in that range"
    )]
    Infeasible {
        /// The requested target.
        target: f64,
        /// Average bpw with the cheapest option of every layer.
        min_bpw: f64,
        /// Average bpw with the dearest option of every layer.
        max_bpw: f64,
    },
}

/// A target may exceed the dearest total by at most this much (bpw) before it is refused, so
/// that a target printed to four decimals (e.g. `6.5001` for a single-option menu) is
/// accepted.
pub const DEAREST_SLACK_BPW: f64 = 5e-5;

/// Default number of DP cost units: `2^18`.
pub const DEFAULT_MAX_UNITS: u64 = 1 << 18;

fn check(menus: &[Vec<Choice>], weights: u64, target: f64) -> Result<u64, MckpError> {
    if menus.is_empty() || weights == 0 {
        return Err(MckpError::Invalid("no layers or no weights".into()));
    }
    for (i, m) in menus.iter().enumerate() {
        if m.is_empty() {
            return Err(MckpError::Invalid(format!("layer {i} has an empty menu")));
        }
        if let Some(c) = m.iter().find(|c| !c.distortion.is_finite() || c.distortion < 0.0) {
            return Err(MckpError::Invalid(format!(
                "layer {i}: distortion {} is not finite and >= 0",
                c.distortion
            )));
        }
    }
    let lo: u64 = menus.iter().map(|m| m.iter().map(|c| c.bits).min().unwrap_or(0)).sum();
    let hi: u64 = menus.iter().map(|m| m.iter().map(|c| c.bits).max().unwrap_or(0)).sum();
    let w = weights as f64;
    let infeasible = || MckpError::Infeasible {
        target,
        min_bpw: lo as f64 / w,
        max_bpw: hi as f64 / w,
    };
    if !target.is_finite() || target <= 0.0 {
        return Err(infeasible());
    }
    let budget = (target * w).floor() as u64;
    if budget < lo || target > hi as f64 / w + DEAREST_SLACK_BPW {
        return Err(infeasible());
    }
    Ok(budget)
}

fn finish(menus: &[Vec<Choice>], choice: Vec<usize>, budget: u64, quantum: u64) -> Selection {
    let bits = menus.iter().zip(&choice).map(|(m, &k)| m[k].bits).sum();
    let distortion = menus.iter().zip(&choice).map(|(m, &k)| m[k].distortion).sum();
    Selection {
        choice,
        bits,
        distortion,
        budget,
        quantum,
    }
}

/// Exact DP solver (see the module docs for the discretization); `max_units` bounds the DP
/// width (use [`DEFAULT_MAX_UNITS`]). `weights` is the total number of weights over all layers.
pub fn solve_exact(menus: &[Vec<Choice>], weights: u64, target: f64, max_units: u64) -> Result<Selection, MckpError> {
    let budget = check(menus, weights, target)?;
    // Costs are measured above each layer's cheapest option, so the DP spends its resolution
    // on the part of the budget that is actually contested.
    let mins: Vec<u64> = menus
        .iter()
        .map(|m| m.iter().map(|c| c.bits).min().unwrap_or(0))
        .collect();
    let slack = budget - mins.iter().sum::<u64>();
    let q = slack.div_ceil(max_units.max(1)).max(1);
    let cap = (slack / q) as usize;
    const INF: f64 = f64::INFINITY;
    // best[c] = minimum distortion of the layers so far with rounded cost exactly c.
    let mut best = vec![INF; cap + 1];
    best[0] = 0.0;
    let mut back: Vec<Vec<u16>> = Vec::with_capacity(menus.len());
    for (m, &lo) in menus.iter().zip(&mins) {
        let mut next = vec![INF; cap + 1];
        let mut arg = vec![u16::MAX; cap + 1];
        for (k, c) in m.iter().enumerate() {
            let u = (c.bits - lo).div_ceil(q) as usize;
            if u > cap {
                continue;
            }
            for (from, &d) in best[..=cap - u].iter().enumerate() {
                if d == INF {
                    continue;
                }
                let v = d + c.distortion;
                let to = from + u;
                if v < next[to] || (v == next[to] && (k as u16) < arg[to]) {
                    next[to] = v;
                    arg[to] = k as u16;
                }
            }
        }
        best = next;
        back.push(arg);
    }
    let (mut c, _) =
        best.iter()
            .enumerate()
            .filter(|(_, d)| d.is_finite())
            .fold(
                (usize::MAX, INF),
                |(bc, bd), (c, &d)| if d < bd { (c, d) } else { (bc, bd) },
            );
    if c == usize::MAX {
        // Feasible in real bits but not after rounding up: only possible with q > 1.
        return Err(MckpError::Invalid(format!(
            "the budget is too tight for the DP quantum of {q} bits; raise max_units"
        )));
    }
    let mut choice = vec![0usize; menus.len()];
    for (i, m) in menus.iter().enumerate().rev() {
        let k = back[i][c] as usize;
        choice[i] = k;
        c -= (m[k].bits - mins[i]).div_ceil(q) as usize;
    }
    Ok(finish(menus, choice, budget, q))
}

/// Indices of the lower convex hull of a menu in (bits, distortion), cheapest first, with
/// strictly decreasing distortion.
fn hull(m: &[Choice]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..m.len()).collect();
    idx.sort_by(|&a, &b| {
        m[a].bits
            .cmp(&m[b].bits)
            .then(m[a].distortion.total_cmp(&m[b].distortion))
    });
    let mut h: Vec<usize> = Vec::new();
    for i in idx {
        if let Some(&l) = h.last() {
            if m[i].distortion >= m[l].distortion {
                continue; // dominated (dearer or equal cost, not better)
            }
        }
        while h.len() >= 2 {
            let (a, b) = (m[h[h.len() - 2]], m[h[h.len() - 1]]);
            let c = m[i];
            // b is above the segment a-c: remove it.
            let lhs = (b.distortion - a.distortion) * (c.bits - a.bits) as f64;
            let rhs = (c.distortion - a.distortion) * (b.bits - a.bits) as f64;
            if lhs >= rhs {
                h.pop();
            } else {
                break;
            }
        }
        h.push(i);
    }
    h
}

/// Lagrangian / convex-hull greedy (see the module docs). Never better than [`solve_exact`]
/// with quantum 1; usually within a fraction of a percent of it.
pub fn solve_greedy(menus: &[Vec<Choice>], weights: u64, target: f64) -> Result<Selection, MckpError> {
    let budget = check(menus, weights, target)?;
    let hulls: Vec<Vec<usize>> = menus.iter().map(|m| hull(m)).collect();
    let mut pos = vec![0usize; menus.len()];
    let mut blocked = vec![false; menus.len()];
    let mut used: u64 = hulls.iter().zip(menus).map(|(h, m)| m[h[0]].bits).sum();
    loop {
        let mut best: Option<(usize, f64)> = None;
        for (i, h) in hulls.iter().enumerate() {
            if blocked[i] || pos[i] + 1 >= h.len() {
                continue;
            }
            let (a, b) = (menus[i][h[pos[i]]], menus[i][h[pos[i] + 1]]);
            let slope = (a.distortion - b.distortion) / (b.bits - a.bits) as f64;
            if best.map_or(true, |(_, s)| slope > s) {
                best = Some((i, slope));
            }
        }
        let Some((i, _)) = best else { break };
        let h = &hulls[i];
        let extra = menus[i][h[pos[i] + 1]].bits - menus[i][h[pos[i]]].bits;
        if used + extra <= budget {
            used += extra;
            pos[i] += 1;
        } else {
            blocked[i] = true;
        }
    }
    let choice = hulls.iter().zip(&pos).map(|(h, &p)| h[p]).collect();
    Ok(finish(menus, choice, budget, 1))
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bits of {} budget, distortion {:.6e}",
            self.bits, self.budget, self.distortion
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(menus: &[Vec<Choice>], budget: u64) -> Option<f64> {
        let mut best: Option<f64> = None;
        let mut idx = vec![0usize; menus.len()];
        loop {
            let bits: u64 = menus.iter().zip(&idx).map(|(m, &k)| m[k].bits).sum();
            let d: f64 = menus.iter().zip(&idx).map(|(m, &k)| m[k].distortion).sum();
            if bits <= budget && best.map_or(true, |b| d < b) {
                best = Some(d);
            }
            let mut i = 0;
            loop {
                if i == menus.len() {
                    return best;
                }
                idx[i] += 1;
                if idx[i] < menus[i].len() {
                    break;
                }
                idx[i] = 0;
                i += 1;
            }
        }
    }

    fn menus() -> impl Strategy<Value = Vec<Vec<Choice>>> {
        prop::collection::vec(
            prop::collection::vec(
                (1u64..200, 0.0f64..100.0).prop_map(|(bits, distortion)| Choice { bits, distortion }),
                1..5,
            ),
            1..6,
        )
    }

    proptest! {
        #[test]
        fn greedy_never_beats_exact(m in menus(), frac in 0.0f64..1.0) {
            let weights = 10u64;
            // Slack below 2^18 bits: quantum 1, the DP is exactly optimal.
            let lo: u64 = m.iter().map(|o| o.iter().map(|c| c.bits).min().unwrap()).sum();
            let hi: u64 = m.iter().map(|o| o.iter().map(|c| c.bits).max().unwrap()).sum();
            let target = (lo as f64 + frac * (hi - lo) as f64) / weights as f64;
            let e = solve_exact(&m, weights, target, DEFAULT_MAX_UNITS).unwrap();
            let g = solve_greedy(&m, weights, target).unwrap();
            prop_assert_eq!(e.quantum, 1);
            prop_assert!(e.bits <= e.budget && g.bits <= g.budget);
            prop_assert!(g.distortion >= e.distortion - 1e-9 * (1.0 + e.distortion));
            let b = brute(&m, e.budget).unwrap();
            prop_assert!((e.distortion - b).abs() <= 1e-9 * (1.0 + b), "dp {} brute {}", e.distortion, b);
        }

        #[test]
        fn coarse_quantum_respects_budget(m in menus(), frac in 0.0f64..1.0) {
            let weights = 10u64;
            let lo: u64 = m.iter().map(|o| o.iter().map(|c| c.bits).min().unwrap()).sum();
            let hi: u64 = m.iter().map(|o| o.iter().map(|c| c.bits).max().unwrap()).sum();
            let target = (lo as f64 + frac * (hi - lo) as f64) / weights as f64;
            if let Ok(e) = solve_exact(&m, weights, target, 16) {
                prop_assert!(e.bits <= e.budget);
            }
        }
    }

    #[test]
    fn infeasible_targets() {
        let m = vec![vec![
            Choice {
                bits: 40,
                distortion: 1.0,
            },
            Choice {
                bits: 80,
                distortion: 0.5,
            },
        ]];
        for t in [3.9, 8.1, 0.0, f64::NAN] {
            for r in [solve_exact(&m, 10, t, DEFAULT_MAX_UNITS), solve_greedy(&m, 10, t)] {
                let e = r.unwrap_err();
                assert!(matches!(e, MckpError::Infeasible { .. }), "{e}");
                assert!(e.to_string().contains("infeasible"));
            }
        }
        assert_eq!(solve_exact(&m, 10, 4.0, DEFAULT_MAX_UNITS).unwrap().choice, vec![0]);
        assert_eq!(solve_greedy(&m, 10, 8.0).unwrap().choice, vec![1]);
        assert!(solve_exact(&[], 10, 4.0, 10).is_err());
        assert!(solve_exact(&[vec![]], 10, 4.0, 10).is_err());
    }
}
