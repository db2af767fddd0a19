//! Seeded, stratified, disjoint train / calibration / test splits.

use crate::{DataError, Images};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How many examples each split takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct SplitSizes {
    /// Examples used to train the model (0 for a model that is not trained here, such as an
    /// imported one).
    pub train: usize,
    /// Examples the calibration and every search may see.
    pub calib: usize,
    /// Held-out examples every claim is judged on.
    pub test: usize,
}

/// Indices into an [`Images`] set for the three disjoint splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training indices.
    pub train: Vec<usize>,
    /// Calibration indices.
    pub calib: Vec<usize>,
    /// Test indices.
    pub test: Vec<usize>,
}

/// Takes `sizes[k]` indices per part from `pool`, each part stratified by label
/// (largest-remainder quotas), parts disjoint, order shuffled.
fn stratified_take(pool: &[usize], labels: &[u8], sizes: &[usize], rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 10];
    for &i in pool {
        by_class[labels[i] as usize].push(i);
    }
    by_class.iter_mut().for_each(|c| c.shuffle(rng));
    let mut cursor = [0usize; 10];
    let mut parts = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let left: Vec<usize> = (0..10).map(|c| by_class[c].len() - cursor[c]).collect();
        let avail: usize = left.iter().sum();
        let exact: Vec<f64> = left.iter().map(|&l| size as f64 * l as f64 / avail.max(1) as f64).collect();
        let mut quota: Vec<usize> = exact.iter().zip(&left).map(|(e, &l)| (e.floor() as usize).min(l)).collect();
        let mut order: Vec<usize> = (0..10).collect();
        order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
        let mut missing = size - quota.iter().sum::<usize>();
        while missing > 0 {
            for &c in &order {
                if missing > 0 && quota[c] < left[c] {
                    quota[c] += 1;
                    missing -= 1;
                }
            }
        }
        let mut part = Vec::with_capacity(size);
        for c in 0..10 {
            part.extend_from_slice(&by_class[c][cursor[c]..cursor[c] + quota[c]]);
            cursor[c] += quota[c];
        }
        part.shuffle(rng);
        parts.push(part);
    }
    parts
}

impl Split {
    /// Draws the splits. With `test_from = Some(k)`, examples `k..` (an official test file
    /// appended after the training file) supply the test split and `..k` the other two.
    pub fn draw(data: &Images, sizes: SplitSizes, test_from: Option<usize>, seed: u64) -> Result<Split, DataError> {
        for (name, n) in [("calib", sizes.calib), ("test", sizes.test)] {
            if n == 0 {
                return Err(DataError::EmptySplit { name });
            }
        }
        let too_large = |available| DataError::SplitTooLarge {
            train: sizes.train,
            calib: sizes.calib,
            test: sizes.test,
            total: sizes.train + sizes.calib + sizes.test,
            available,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = data.len();
        match test_from {
            None => {
                if sizes.train + sizes.calib + sizes.test > n {
                    return Err(too_large(n));
                }
                let pool: Vec<usize> = (0..n).collect();
                let mut p = stratified_take(&pool, &data.labels, &[sizes.train, sizes.calib, sizes.test], &mut rng);
                let (test, calib, train) = (p.pop(), p.pop(), p.pop());
                Ok(Split {
                    train: train.unwrap_or_default(),
                    calib: calib.unwrap_or_default(),
                    test: test.unwrap_or_default(),
                })
            }
            Some(k) => {
                if sizes.train + sizes.calib > k || sizes.test > n - k {
                    return Err(too_large(n));
                }
                let a: Vec<usize> = (0..k).collect();
                let b: Vec<usize> = (k..n).collect();
                let mut p = stratified_take(&a, &data.labels, &[sizes.train, sizes.calib], &mut rng);
                let mut t = stratified_take(&b, &data.labels, &[sizes.test], &mut rng);
                let (calib, train) = (p.pop(), p.pop());
                Ok(Split {
                    train: train.unwrap_or_default(),
                    calib: calib.unwrap_or_default(),
                    test: t.pop().unwrap_or_default(),
                })
            }
        }
    }
}

impl Split {
    /// Cross-fitted splits: all examples are dealt into `n / sizes.test` stratified folds
    /// (fixed by `fold_seed`, the same for every repeat); repeat `fold` tests on fold
    /// `fold mod k` and draws calibration and training examples from the other folds with
    /// `seed`. Across `k` repeats every example is test data exactly once.
    pub fn cross_fit(
        data: &Images,
        sizes: SplitSizes,
        fold_seed: u64,
        fold: usize,
        seed: u64,
    ) -> Result<Split, DataError> {
        Split::draw(data, sizes, None, seed)?; // sizes checked as for a plain split
        let k = (data.len() / sizes.test).max(1);
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 10];
        for (i, &y) in data.labels.iter().enumerate() {
            by_class[y as usize % 10].push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(fold_seed);
        by_class.iter_mut().for_each(|c| c.shuffle(&mut rng));
        let dealt: Vec<usize> = by_class.concat();
        let f = fold % k;
        let mut test: Vec<usize> = dealt.iter().enumerate().filter(|(j, _)| j % k == f).map(|(_, &i)| i).collect();
        test.truncate(sizes.test);
        let in_test: std::collections::HashSet<usize> = test.iter().copied().collect();
        let pool: Vec<usize> = (0..data.len()).filter(|i| !in_test.contains(i)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        test.shuffle(&mut rng);
        let mut p = stratified_take(&pool, &data.labels, &[sizes.train, sizes.calib], &mut rng);
        let (calib, train) = (p.pop().unwrap_or_default(), p.pop().unwrap_or_default());
        Ok(Split { train, calib, test })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn toy(n: usize) -> Images {
        Images { pixels: vec![0; n * 784], labels: (0..n).map(|i| ((i * 7) % 10) as u8).collect() }
    }

    #[test]
    fn disjoint_sized_stratified_deterministic() {
        let d = toy(1000);
        let sizes = SplitSizes { train: 600, calib: 200, test: 100 };
        let s = Split::draw(&d, sizes, None, 7).unwrap();
        assert_eq!((s.train.len(), s.calib.len(), s.test.len()), (600, 200, 100));
        let all: HashSet<usize> = s.train.iter().chain(&s.calib).chain(&s.test).copied().collect();
        assert_eq!(all.len(), 900, "splits overlap");
        for c in 0..10u8 {
            assert_eq!(s.test.iter().filter(|&&i| d.labels[i] == c).count(), 10, "class {c} not stratified");
        }
        assert_eq!(s, Split::draw(&d, sizes, None, 7).unwrap());
        assert_ne!(s.test, Split::draw(&d, sizes, None, 8).unwrap().test);
    }

    #[test]
    fn cross_fitted_folds_use_every_example_as_test_once() {
        let d = toy(1000);
        let sizes = SplitSizes { train: 700, calib: 100, test: 100 };
        let mut seen = vec![0usize; 1000];
        for fold in 0..10 {
            let s = Split::cross_fit(&d, sizes, 3, fold, 40 + fold as u64).unwrap();
            assert_eq!((s.train.len(), s.calib.len(), s.test.len()), (700, 100, 100));
            let all: HashSet<usize> = s.train.iter().chain(&s.calib).chain(&s.test).copied().collect();
            assert_eq!(all.len(), 900, "splits overlap");
            for c in 0..10u8 {
                assert_eq!(s.test.iter().filter(|&&i| d.labels[i] == c).count(), 10, "class {c} not stratified");
            }
            s.test.iter().for_each(|&i| seen[i] += 1);
        }
        assert!(seen.iter().all(|&n| n == 1), "every example is test data exactly once over 10 folds");
        assert_eq!(Split::cross_fit(&d, sizes, 3, 2, 5).unwrap(), Split::cross_fit(&d, sizes, 3, 2, 5).unwrap());
    }

    #[test]
    fn separate_test_pool() {
        let d = toy(1000);
        let s = Split::draw(&d, SplitSizes { train: 500, calib: 100, test: 150 }, Some(800), 1).unwrap();
        assert!(s.test.iter().all(|&i| i >= 800));
        assert!(s.train.iter().chain(&s.calib).all(|&i| i < 800));
    }

    #[test]
    fn too_large_and_empty() {
        let d = toy(100);
        let e = Split::draw(&d, SplitSizes { train: 90, calib: 10, test: 10 }, None, 0).unwrap_err();
        assert!(e.to_string().contains("110 exceed the 100"), "{e}");
        let e = Split::draw(&d, SplitSizes { train: 10, calib: 0, test: 10 }, None, 0).unwrap_err();
        assert!(e.to_string().contains("`calib`"), "{e}");
        // No training examples: a model that is not trained here.
        let s = Split::draw(&d, SplitSizes { train: 0, calib: 10, test: 10 }, None, 0).unwrap();
        assert_eq!((s.train.len(), s.calib.len(), s.test.len()), (0, 10, 10));
    }
}
