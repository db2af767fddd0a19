//! The data an experiment runs on: loaded once per sweep (shipped digits, fetched MNIST or
//! Fashion-MNIST, or IDX files), and each run's split of it.

use crate::{PipelineError, Result};
use mpq_data::{Images, Split};
use mpq_experiment::config::{Dataset, Experiment, Half, RunSpec};

/// The data an experiment runs on, loaded once.
pub struct Data {
    /// All examples.
    pub images: Images,
    /// Index where a separate test file starts, if any.
    pub test_from: Option<usize>,
    /// Name for CSV rows.
    pub name: String,
    /// SHA-256 of the examples' bytes (part of the checkpoint cache key).
    pub digest: String,
}

/// Loads the experiment's dataset and checks the split sizes fit it.
pub fn load_data(exp: &Experiment) -> Result<Data> {
    let d = &exp.data;
    let (images, test_from, name) = match d.dataset {
        Dataset::Mnist10k => (mpq_data::shipped::load()?, None, "mnist-10k".to_string()),
        Dataset::Mnist | Dataset::FashionMnist => {
            let name = if d.dataset == Dataset::Mnist { "mnist" } else { "fashion-mnist" };
            let (images, k) = mpq_data::fetch::load_fetched(name, &d.dir.join(name))?;
            (images, Some(k), name.to_string())
        }
        Dataset::Idx => {
            let (Some(i), Some(l)) = (&d.images, &d.labels) else {
                return Err(PipelineError::Other("dataset = \"idx\" needs images and labels".into()));
            };
            let train = mpq_data::idx::read_pair(i, l)?;
            match (&d.test_images, &d.test_labels) {
                (Some(ti), Some(tl)) => {
                    let k = train.len();
                    (train.concat(mpq_data::idx::read_pair(ti, tl)?), Some(k), i.display().to_string())
                }
                _ => (train, None, i.display().to_string()),
            }
        }
    };
    let (images, name) = match d.half {
        Some(half) => {
            let [even, odd] = images.halves();
            match half {
                Half::Even => (even, format!("{name}-even-half")),
                Half::Odd => (odd, format!("{name}-odd-half")),
            }
        }
        None => (images, name),
    };
    // Split sizes are checked against the data here, before any run starts.
    let mut sizes: Vec<_> = exp.models.iter().map(|m| exp.sizes_for(m)).collect();
    sizes.sort_by_key(|s| (s.train, s.calib, s.test));
    sizes.dedup();
    for s in sizes {
        mpq_data::Split::draw(&images, s, test_from, 0)?;
    }
    let digest = images.digest();
    Ok(Data { images, test_from, name, digest })
}

/// The run's train / calibration / test split: a plain seeded split, or the run's
/// cross-fitted fold (`[data] cross_fit`).
pub fn split(exp: &Experiment, spec: &RunSpec, data: &Data) -> Result<Split> {
    if exp.data.cross_fit {
        let fold_seed = mpq_experiment::config::derive_seed(exp.seed, "folds");
        return Ok(Split::cross_fit(
            &data.images,
            exp.sizes_for(&spec.model),
            fold_seed,
            spec.repeat,
            spec.split_seed,
        )?);
    }
    Ok(Split::draw(&data.images, exp.sizes_for(&spec.model), data.test_from, spec.split_seed)?)
}
