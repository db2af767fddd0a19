//! Training with burn's autodiff on the run's backend.

use super::config::Optimizer;
use super::run_loop::{EpochLog, Job, Steps, run_loop};
use crate::{ModelError, Net, metrics};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use burn::prelude::*;

/// Trains `model` with burn's autodiff and optimizers on `device`.
pub(super) fn train(job: &Job, progress: &mut dyn FnMut(usize, usize)) -> Result<(Net, Vec<EpochLog>), ModelError> {
    let Job { model, tc, device, data, split, seed } = *job;
    let adev = device.clone().autodiff();
    let optim = match tc.optimizer {
        Optimizer::Adam => AdamConfig::new().init(),
        Optimizer::Sgd => SgdConfig::new().init(),
    };
    let held = (metrics::batches(data, &split.calib, device), data.gather_labels(&split.calib));
    let (net, loss) = (Some(model.init(&adev, seed)), CrossEntropyLossConfig::new().init(&adev));
    let mut steps = BurnSteps { net, optim, loss, held, dev: adev };
    let logs = run_loop(job, progress, &mut steps)?;
    Ok((steps.net.map(|n| n.valid()).unwrap_or_else(|| model.init(device, seed)), logs))
}

/// burn's autodiff on the run's backend.
struct BurnSteps {
    /// The network being trained (taken out and put back by each optimizer step).
    net: Option<Net>,
    optim: burn::optim::ModuleOptimizer,
    loss: burn::nn::loss::CrossEntropyLoss,
    /// The calibration split as input batches, and its labels.
    held: (Vec<Tensor<2>>, Vec<i64>),
    /// The autodiff device the batches go to.
    dev: Device,
}

impl Steps for BurnSteps {
    fn step(&mut self, x: Vec<f32>, y: Vec<i64>, lr: f64) -> f64 {
        let Some(net) = self.net.take() else { return f64::NAN };
        let (dev, n) = (&self.dev, y.len());
        let x = Tensor::<2>::from_data(TensorData::new(x, [n, 784]), dev);
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [n]), dev);
        let loss = self.loss.forward(net.forward(x), y);
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            self.net = Some(net);
            return value as f64;
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        self.net = Some(self.optim.step(lr, net, grads));
        value as f64
    }

    fn heldout(&mut self) -> metrics::Metrics {
        let Some(net) = &self.net else { return metrics::Metrics { loss: f64::NAN, acc: 0.0 } };
        let valid = net.valid();
        let logits: Vec<f32> = self
            .held
            .0
            .iter()
            .flat_map(|x| valid.forward(x.clone()).into_data().iter::<f32>().collect::<Vec<_>>())
            .collect();
        metrics::score(&logits, &self.held.1, 1.0)
    }
}
