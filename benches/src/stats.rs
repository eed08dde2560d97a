//! Summaries of benchmark samples: the median and a distribution-free
//! confidence interval for it.

use serde::{Deserialize, Serialize};

/// A median with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The median.
    pub median: f64,
    /// Lower bound of the 95% confidence interval of the median.
    pub ci_low: f64,
    /// Upper bound of the 95% confidence interval of the median.
    pub ci_high: f64,
    /// How many values were summarised.
    pub samples: usize,
}

/// The median of `values` (the mean of the middle two for an even count),
/// or `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Ranks (0-based, inclusive) of the order statistics bounding a confidence
/// interval of at least 95% for the median of `n` values: `[x(r), x(n-1-r)]`
/// covers the median with probability 1 - 2 P(B <= r), B ~ Binomial(n, 1/2),
/// so `r` is the largest rank with P(B <= r) <= 2.5%. Needs no assumption
/// about the distribution, which for namespace teardown is skewed.
fn ci_ranks(n: usize) -> (usize, usize) {
    // P(B = i) accumulated in log space, so that large n does not underflow.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0f64;
    let mut cumulative = 0.0f64;
    let mut r = 0;
    for i in 0..n / 2 {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        cumulative += (ln_choose + ln_half_n).exp();
        if cumulative > 0.025 {
            break;
        }
        r = i;
    }
    (r, n.saturating_sub(1) - r)
}

/// Summarises `values`: median and its 95% confidence interval; `None` for
/// no finite values.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let median = median(&v)?;
    v.sort_by(f64::total_cmp);
    let (lo, hi) = ci_ranks(v.len());
    Some(Summary { median, ci_low: v[lo].min(median), ci_high: v[hi].max(median), samples: v.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn confidence_ranks_match_tables() {
        // Classic table of distribution-free CIs for the median (>= 95%):
        // n=10: x(2)..x(9); n=20: x(6)..x(15); n=100: x(40)..x(61).
        assert_eq!(ci_ranks(10), (1, 8));
        assert_eq!(ci_ranks(20), (5, 14));
        assert_eq!(ci_ranks(100), (39, 60));
        // Too few values for 95%: the whole range.
        assert_eq!(ci_ranks(5), (0, 4));
        assert_eq!(ci_ranks(1), (0, 0));
    }

    #[test]
    fn summary_brackets_the_median() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = summarize(&v).unwrap();
        assert_eq!((s.median, s.ci_low, s.ci_high, s.samples), (5.5, 2.0, 9.0, 10));
        assert!(summarize(&[]).is_none());
    }
}
