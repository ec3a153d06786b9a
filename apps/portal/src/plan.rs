//! The order in which instances are tried, as a pure function of the
//! candidates and a random source: lowest SRV priority first, and within a
//! priority a weighted random order (RFC 2782), so load spreads and a failed
//! instance is followed by another one.

use rand::Rng;

use crate::discovery::Candidate;

/// The most instances tried for one request.
pub const MAX_ATTEMPTS: usize = 3;

/// The candidates to try, in order, at most [`MAX_ATTEMPTS`].
pub fn attempt_order(candidates: Vec<Candidate>, rng: &mut impl Rng) -> Vec<Candidate> {
    // Efraimidis-Spirakis: key = u^(1/w), sorted descending, is a weighted
    // random permutation. Weight 0 still gets a (small) chance.
    let mut keyed: Vec<(u16, f64, Candidate)> = candidates
        .into_iter()
        .map(|c| {
            let w = f64::from(c.weight).max(0.01);
            let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            (c.priority, u.powf(1.0 / w), c)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    keyed
        .into_iter()
        .take(MAX_ATTEMPTS)
        .map(|(_, _, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashMap;

    fn cand(name: &str, priority: u16, weight: u16) -> Candidate {
        Candidate {
            target: name.into(),
            port: 1,
            priority,
            weight,
            known: None,
        }
    }

    fn seed() -> u64 {
        let s = std::env::var("PLAN_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(rand::random);
        println!("PLAN_SEED={s}");
        s
    }

    #[test]
    fn lower_priority_first_and_capped() {
        let mut rng = StdRng::seed_from_u64(seed());
        let order = attempt_order(
            vec![
                cand("b", 2, 1),
                cand("a", 1, 1),
                cand("c", 3, 1),
                cand("d", 4, 1),
            ],
            &mut rng,
        );
        let names: Vec<_> = order.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn equal_weights_spread_evenly_and_every_instance_is_tried() {
        let mut rng = StdRng::seed_from_u64(seed());
        let cands = vec![cand("a", 1, 1), cand("b", 1, 1), cand("c", 1, 1)];
        let mut first: HashMap<String, u32> = HashMap::new();
        for _ in 0..3000 {
            let order = attempt_order(cands.clone(), &mut rng);
            let mut names: Vec<_> = order.iter().map(|c| c.target.clone()).collect();
            *first.entry(names[0].clone()).or_default() += 1;
            names.sort();
            assert_eq!(names, ["a", "b", "c"]);
        }
        for (k, n) in &first {
            assert!((800..1200).contains(n), "{k} first {n} of 3000: {first:?}");
        }
    }

    #[test]
    fn heavier_weight_goes_first_more_often() {
        let mut rng = StdRng::seed_from_u64(seed());
        let cands = vec![cand("light", 1, 1), cand("heavy", 1, 9)];
        let heavy_first = (0..2000)
            .filter(|_| attempt_order(cands.clone(), &mut rng)[0].target == "heavy")
            .count();
        assert!((1650..1950).contains(&heavy_first), "{heavy_first} of 2000");
    }

    #[test]
    fn empty_in_empty_out() {
        let mut rng = StdRng::seed_from_u64(seed());
        assert!(attempt_order(vec![], &mut rng).is_empty());
    }
}
