//! Medians, percentiles and ratios of many samples.
//!
//! The machine is shared and noisy: every number the suite reports is a
//! median or a percentile of many samples, and every comparison is a ratio
//! of two things measured in the same run, interleaved, so that whatever
//! else the machine is doing weighs on both sides alike.

use std::time::Duration;

/// Samples of one quantity, in seconds.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// No samples yet.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Adds a duration.
    pub fn push(&mut self, value: Duration) {
        self.0.push(value.as_secs_f64());
    }

    /// Adds a plain number (bytes, ratios, counts).
    pub fn push_value(&mut self, value: f64) {
        self.0.push(value);
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0 to 1), by the nearest rank; NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    /// The median.
    pub fn median(&self) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        }
    }

    /// The 99th percentile.
    pub fn p99(&self) -> f64 {
        self.quantile(0.99)
    }
}

/// A duration in seconds, written with a unit that suits it.
pub fn time(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "n/a".to_owned();
    }
    let micros = seconds * 1e6;
    if micros < 1.0 {
        format!("{:.0} ns", micros * 1e3)
    } else if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else if micros < 10_000.0 {
        format!("{:.2} ms", micros / 1e3)
    } else if micros < 1_000_000.0 {
        format!("{:.1} ms", micros / 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

/// A size in bytes, in MB (10^6) or KB.
pub fn size(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "n/a".to_owned();
    }
    if bytes >= 1e6 {
        format!("{:.2} MB", bytes / 1e6)
    } else {
        format!("{:.0} KB", bytes / 1e3)
    }
}

/// A ratio, as `3.4x`.
pub fn ratio(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    if value >= 10.0 {
        format!("{value:.0}x")
    } else {
        format!("{value:.2}x")
    }
}

/// A fraction as a signed percentage (`+12%`).
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "n/a".to_owned();
    }
    format!("{:+.0}%", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_quantiles_by_nearest_rank() {
        let mut s = Samples::new();
        for v in 1..=100 {
            s.push_value(f64::from(v));
        }
        assert_eq!(s.median(), 50.5);
        assert_eq!(s.quantile(0.99), 99.0);
        assert_eq!(s.quantile(1.0), 100.0);
        assert!(Samples::new().median().is_nan());
    }

    #[test]
    fn units_suit_the_value() {
        assert_eq!(time(0.000_250), "250 µs");
        assert_eq!(time(0.0042), "4.20 ms");
        assert_eq!(size(4_200_000.0), "4.20 MB");
        assert_eq!(ratio(31.4), "31x");
        assert_eq!(percent(0.123), "+12%");
    }
}
