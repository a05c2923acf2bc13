//! How sure one run is that two targets' p50 differ: the difference of their p50 over the
//! whole run, as the JSON reports them, with a 95 % confidence interval from resampling the
//! run's rounds. A round is resampled for both targets at once, since the rounds interleave
//! the targets and a slow spell of the machine falls on the rounds it lasts.

use std::time::Duration;

use crate::load::quantile_us;

/// How many resampled runs make the interval.
const RESAMPLES: usize = 1000;

/// `a`'s p50 minus `b`'s over all their rounds (`a[r]`: `a`'s latencies in round `r`), and
/// the 2.5th and 97.5th percentiles of that difference over runs made of the rounds drawn
/// again with replacement (a paired bootstrap), all in µs to 0.1. `None` with fewer than two
/// rounds, where there is no spread to speak of.
pub(crate) fn difference(a: &[Vec<Duration>], b: &[Vec<Duration>]) -> Option<Difference> {
    let rounds = a.len().min(b.len());
    if rounds < 2 {
        return None;
    }
    let p50 =
        |of: &[Vec<Duration>], drawn: &mut dyn Iterator<Item = usize>, buf: &mut Vec<Duration>| {
            buf.clear();
            for r in drawn {
                buf.extend_from_slice(&of[r]);
            }
            quantile_us(buf, 0.5)
        };
    let mut buf = Vec::new();
    let all = p50(a, &mut (0..rounds), &mut buf) - p50(b, &mut (0..rounds), &mut buf);
    // A fixed seed: the same rounds give the same interval.
    let mut random = SplitMix64(0x5eed_f10c_3e5a_0001);
    let mut drawn = vec![0; rounds];
    let mut differences: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            for d in drawn.iter_mut() {
                *d = random.below(rounds);
            }
            p50(a, &mut drawn.iter().copied(), &mut buf)
                - p50(b, &mut drawn.iter().copied(), &mut buf)
        })
        .collect();
    differences.sort_by(f64::total_cmp);
    let tenth = |x: f64| (x * 10.0).round() / 10.0;
    Some(Difference {
        p50: tenth(all),
        low: tenth(differences[RESAMPLES * 25 / 1000]),
        high: tenth(differences[RESAMPLES * 975 / 1000 - 1]),
    })
}

#[derive(Debug, PartialEq)]
pub(crate) struct Difference {
    pub(crate) p50: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
}

/// A small, fast generator for drawing rounds (Steele, Lea and Flood's SplitMix64); the
/// benchmark needs no stronger randomness and no dependency for it.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (the bias of a modulo is below 2^-50 for the round counts here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(offset_us: u64, spread: &[u64]) -> Vec<Vec<Duration>> {
        spread
            .iter()
            .map(|base| {
                (0..101)
                    .map(|i| Duration::from_micros(base + i + offset_us))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_constant_offset_is_found_with_no_spread() {
        let slow_and_fast = [100, 400, 150, 90, 800, 120];
        let found = difference(&rounds(4, &slow_and_fast), &rounds(0, &slow_and_fast)).unwrap();
        assert_eq!((found.p50, found.low, found.high), (4.0, 4.0, 4.0));
    }

    #[test]
    fn rounds_that_disagree_widen_the_interval_around_the_difference() {
        // In half the rounds `a` is 10 µs slower, in the other half as fast as `b`.
        let base = [200; 40];
        let b = rounds(0, &base);
        let mut a = rounds(0, &base);
        for round in a.iter_mut().step_by(2) {
            for x in round.iter_mut() {
                *x += Duration::from_micros(10);
            }
        }
        let found = difference(&a, &b).unwrap();
        assert!(found.low < found.p50 && found.p50 < found.high, "{found:?}");
        assert!(found.low >= 0.0 && found.high <= 10.0, "{found:?}");
        let reversed = difference(&b, &a).unwrap();
        assert_eq!(reversed.p50, -found.p50);
        // The same rounds, the same interval.
        assert_eq!(difference(&a, &b), Some(found));
    }

    #[test]
    fn one_round_has_no_interval() {
        assert_eq!(difference(&rounds(0, &[1]), &rounds(0, &[2])), None);
        assert_eq!(difference(&[], &[]), None);
    }
}
