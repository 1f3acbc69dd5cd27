//! Effect sizes with 95 % confidence intervals, the way the comparison reports them.
//!
//! Throughput is compared as a ratio. Each round of a cell measures every stack once, in a
//! random order and within seconds of each other, so the round is the unit: the log of each
//! round's ratio (stack / baseline) is one observation, and the interval is Student's t over
//! those observations, taken back with `exp`. Pairing within a round cancels the machine's
//! drift (it moves both sides alike); the random order cancels any advantage of a position.
//! The same interval over one stack's own trials gives its geometric-mean throughput.

/// An estimate with a two-sided 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Observations behind it.
    pub n: usize,
}

impl Interval {
    /// The larger distance from the estimate to an end, relative to the estimate (0.03 is ±3 %).
    pub fn half_width(&self) -> f64 {
        ((self.high / self.estimate) - 1.0).max(1.0 - self.low / self.estimate)
    }

    /// A ratio whose interval holds 1: no difference shown.
    pub fn is_tie(&self) -> bool {
        self.low <= 1.0 && 1.0 <= self.high
    }

    /// The interval of `1 / x`: a throughput ratio as a ratio of time per request (in a
    /// closed loop with the same connections, time per request is connections / throughput).
    pub fn inverse(&self) -> Self {
        Self {
            estimate: 1.0 / self.estimate,
            low: 1.0 / self.high,
            high: 1.0 / self.low,
            n: self.n,
        }
    }

    /// `1.12x [1.06–1.18]`, or `tie [0.98–1.03]` when the interval holds 1; a third decimal
    /// when the interval reaches below 0.1 (`0.085x [0.073–0.098]`), where two would leave
    /// one significant digit.
    pub fn ratio_text(&self) -> String {
        let decimals = if self.low < 0.1 { 3 } else { 2 };
        let range = format!("[{:.decimals$}–{:.decimals$}]", self.low, self.high);
        if self.is_tie() {
            format!("tie {range}")
        } else {
            format!("{:.decimals$}x {range}", self.estimate)
        }
    }
}

/// The geometric mean of positive values with its 95 % interval (`None` below two values or
/// for a value that is not positive).
pub fn geometric_mean(values: &[f64]) -> Option<Interval> {
    if values.len() < 2 || values.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
        return None;
    }
    let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let variance = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let half = t_975(logs.len() - 1) * (variance / n).sqrt();
    Some(Interval {
        estimate: mean.exp(),
        low: (mean - half).exp(),
        high: (mean + half).exp(),
        n: logs.len(),
    })
}

/// The ratio `subject / baseline` from paired observations (one pair per round).
pub fn paired_ratio(pairs: &[(f64, f64)]) -> Option<Interval> {
    let ratios: Vec<f64> = pairs.iter().map(|(s, b)| s / b).collect();
    geometric_mean(&ratios)
}

/// The ratio of `subject`'s geometric mean to `baseline`'s, from independent observations
/// (two cells measured at different times, so no round pairs them): Welch's interval on the
/// difference of the logs' means, with the Welch-Satterthwaite degrees of freedom. Wider than
/// a paired ratio, as it should be: the machine's drift between the two is in it.
pub fn unpaired_ratio(subject: &[f64], baseline: &[f64]) -> Option<Interval> {
    let moments = |values: &[f64]| -> Option<(f64, f64, f64)> {
        if values.len() < 2 || values.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().map(|v| v.ln()).sum::<f64>() / n;
        let variance = values.iter().map(|v| (v.ln() - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Some((mean, variance / n, n))
    };
    let (mean_s, se2_s, n_s) = moments(subject)?;
    let (mean_b, se2_b, n_b) = moments(baseline)?;
    let se2 = se2_s + se2_b;
    let df = if se2 > 0.0 {
        se2.powi(2) / (se2_s.powi(2) / (n_s - 1.0) + se2_b.powi(2) / (n_b - 1.0))
    } else {
        n_s + n_b - 2.0
    };
    let half = t_975(df.floor().max(1.0) as usize) * se2.sqrt();
    let diff = mean_s - mean_b;
    Some(Interval {
        estimate: diff.exp(),
        low: (diff - half).exp(),
        high: (diff + half).exp(),
        n: subject.len() + baseline.len(),
    })
}

/// The median (the mean of the middle two for an even count); `NaN` for no values.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Student's t quantile 0.975 for `df` degrees of freedom.
pub fn t_975(df: usize) -> f64 {
    // The exact values for small samples, where the approximation below is weakest.
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            // Cornish-Fisher expansion around the normal quantile.
            let z: f64 = 1.959_964;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_no_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn t_quantiles_join_the_table_and_the_expansion() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(30), 2.042);
        // 40 and 120 degrees of freedom: 2.021 and 1.980 in the tables.
        assert!((t_975(40) - 2.021).abs() < 0.001, "{}", t_975(40));
        assert!((t_975(120) - 1.980).abs() < 0.001, "{}", t_975(120));
        assert!(t_975(0).is_infinite());
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn unpaired_ratios_carry_both_sides_spread() {
        // Subject logs 4.70048 and 4.79579 (mean 4.748135, se^2 0.002271), baseline without
        // spread: one degree of freedom, t = 12.706, half-width 0.60551 around ln 1.15369.
        let i = unpaired_ratio(&[110.0, 121.0], &[100.0, 100.0]).unwrap();
        assert!(close(i.estimate, 1.331_f64.sqrt()), "{i:?}");
        assert!((i.low - 0.629_68).abs() < 1e-4, "{i:?}");
        assert!((i.high - 2.113_78).abs() < 1e-4, "{i:?}");
        assert!(i.is_tie());
        let twice =
            unpaired_ratio(&[200.0, 201.0, 199.0, 200.0], &[100.0, 101.0, 99.0, 100.0]).unwrap();
        assert!(
            !twice.is_tie() && (twice.estimate - 2.0).abs() < 0.01,
            "{twice:?}"
        );
        assert!(unpaired_ratio(&[1.0], &[1.0, 2.0]).is_none());
        assert!(unpaired_ratio(&[1.0, 0.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn intervals_of_ratios() {
        // Ratios 1.1, 1.2 and 1.0: logs with mean 0.09254 and sd 0.09119; t(2) = 4.303.
        let i = paired_ratio(&[(110.0, 100.0), (240.0, 200.0), (50.0, 50.0)]).unwrap();
        assert!(close(i.estimate, 1.096_961_3), "{i:?}");
        assert!(
            close(i.low, 0.874_582_6) && close(i.high, 1.375_883_8),
            "{i:?}"
        );
        assert_eq!(i.n, 3);
        assert!(i.is_tie());
        assert_eq!(i.ratio_text(), "tie [0.87–1.38]");

        let faster = paired_ratio(&[(112.0, 100.0), (113.0, 100.0), (111.0, 100.0)]).unwrap();
        assert!(!faster.is_tie());
        assert_eq!(faster.ratio_text(), "1.12x [1.10–1.15]");
        assert!(
            close(faster.half_width(), 1.145_091_3 / 1.119_970_2 - 1.0),
            "{faster:?}"
        );

        let slower = paired_ratio(&[(80.0, 100.0), (81.0, 100.0), (79.0, 100.0)]).unwrap();
        assert_eq!(slower.ratio_text(), "0.80x [0.78–0.83]");
        // As time per request: the other way round, ends swapped.
        let time = slower.inverse();
        assert!(close(time.estimate, 1.0 / slower.estimate), "{time:?}");
        assert!(close(time.low, 1.0 / slower.high) && close(time.high, 1.0 / slower.low));
        assert_eq!(time.ratio_text(), "1.25x [1.21–1.29]");
        assert_eq!(time.n, 3);
        let small = paired_ratio(&[(8.0, 100.0), (8.5, 100.0), (9.0, 100.0)]).unwrap();
        assert_eq!(small.ratio_text(), "0.085x [0.073–0.098]");
    }

    #[test]
    fn identical_rounds_have_a_zero_width_interval() {
        let i = geometric_mean(&[5.0, 5.0, 5.0, 5.0]).unwrap();
        assert!(
            close(i.estimate, 5.0) && close(i.low, 5.0) && close(i.high, 5.0),
            "{i:?}"
        );
        assert!(i.half_width().abs() < 1e-9);
    }

    #[test]
    fn too_little_or_invalid_data_gives_no_interval() {
        assert_eq!(geometric_mean(&[1.0]), None);
        assert_eq!(geometric_mean(&[1.0, 0.0]), None);
        assert_eq!(geometric_mean(&[1.0, f64::NAN]), None);
        assert_eq!(paired_ratio(&[]), None);
    }
}
