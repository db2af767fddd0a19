//! Errors of the quant crate.

use thiserror::Error;

/// What can go wrong quantizing, searching or serializing plans.
#[derive(Debug, Error)]
pub enum QuantError {
    /// A bit width outside the supported set.
    #[error(transparent)]
    Bits(#[from] mpq_net::BitsError),
    /// A plan does not fit the model.
    #[error("plan has {got} layers, the model has {expected}")]
    PlanLength {
        /// Layers in the model.
        expected: usize,
        /// Layers in the plan.
        got: usize,
    },
    /// A loss came out NaN or infinite.
    #[error("non-finite loss {loss} for plan {plan}")]
    NonFinite {
        /// The plan's code.
        plan: String,
        /// The loss.
        loss: f64,
    },
    /// A plan looked up in an exhaustive table is not there (other widths or targets).
    #[error("plan {plan} is not in the exhaustive table")]
    NotInTable {
        /// The plan's code.
        plan: String,
    },
    /// A plan cannot be packed for the integer engine.
    #[error("export: {0}")]
    Export(String),
    /// Plan (de)serialization failed.
    #[error("plan: {0}")]
    Serde(String),
    /// A search asked for more configurations than allowed.
    #[error(
        "exhaustive search over {layers} layers would evaluate {configs} configs (limit {limit}); use greedy or taylor"
    )]
    TooMany {
        /// Layers.
        layers: usize,
        /// 3^layers.
        configs: u128,
        /// The limit.
        limit: usize,
    },
}
