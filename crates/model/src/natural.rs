//! Natural ("human") ordering of tensor names: `layer.2` sorts before `layer.10`.

use std::cmp::Ordering;

/// Compares two strings in natural order: maximal runs of ASCII digits compare by numeric value
/// (any length, leading zeros ignored), everything else byte-wise. Ties (e.g. `a01` vs `a1`) are
/// broken by plain byte order, so this is a total order consistent with `==`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let si = i;
            while i < x.len() && x[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < y.len() && y[j].is_ascii_digit() {
                j += 1;
            }
            let nx = trim_zeros(&x[si..i]);
            let ny = trim_zeros(&y[sj..j]);
            let ord = nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            match x[i].cmp(&y[j]) {
                Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
                ord => return ord,
            }
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| a.cmp(b))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_numbers_numerically() {
        let mut v = vec![
            "layer.10.w",
            "layer.2.w",
            "layer.1.w",
            "embed",
            "layer.02.w",
            "layer.2",
            "layer.99999999999999999999999.w",
            "layer.100000000000000000000000.w",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "embed",
                "layer.1.w",
                "layer.2",
                "layer.02.w",
                "layer.2.w",
                "layer.10.w",
                "layer.99999999999999999999999.w",
                "layer.100000000000000000000000.w",
            ]
        );
    }

    #[test]
    fn total_order_consistent_with_eq() {
        assert_eq!(natural_cmp("a1", "a1"), Ordering::Equal);
        assert_ne!(natural_cmp("a01", "a1"), Ordering::Equal);
        assert_eq!(natural_cmp("a01", "a1"), natural_cmp("a1", "a01").reverse());
        assert_eq!(natural_cmp("", "a"), Ordering::Less);
    }
}
