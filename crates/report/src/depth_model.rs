//! A model of a depth study as the report's rows label it (shared by the depth section and
//! its search tables).

/// One model of a depth study as the rows label it: what the section groups and orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthModel {
    /// Row label (`resnet20-8-channel`).
    pub label: String,
    /// The residual network (true) or its plain twin.
    pub residual: bool,
    /// Weight granularity in words (`per-tensor`).
    pub granularity: String,
    /// Layers with weights (6n + 2).
    pub depth: usize,
}

impl DepthModel {
    /// The series this model's points belong to, e.g. "residual, per-channel".
    pub(crate) fn series(&self) -> String {
        format!("{}, {}", if self.residual { "residual" } else { "plain" }, self.granularity)
    }
}
