//! The markdown report: method, setup, the claims table, the summary table and the figures.

use crate::{ClaimRow, SummaryRow};

/// What the report needs besides the tables.
pub struct ReportInput<'a> {
    /// Experiment name.
    pub name: &'a str,
    /// Setup paragraph (data, splits, seeds, machine), already written.
    pub setup: &'a str,
    /// Further markdown sections (with their headings), placed before the figures.
    pub sections: &'a str,
    /// Commands that produced the results.
    pub commands: &'a [String],
    /// Figure stems and titles, relative to the report.
    pub figures: &'a [(String, String)],
    /// Path prefix of the figures, relative to the report.
    pub figure_dir: &'a str,
    /// Which code trained the models, in words (the method says it).
    pub trainer: &'a str,
    /// How plans were scored, in words (f32 simulation or the integer engine).
    pub scoring: &'a str,
    /// How weights were quantized, in words (the scale's granularity).
    pub weights: &'a str,
}

/// [`ReportInput::scoring`] of plans quantized and dequantized in f32.
pub const SIMULATED: &str = "simulated on the host in plain f32 arithmetic with a fixed order of every sum";

/// [`ReportInput::scoring`] of plans run on the integer engine.
pub const INTEGER: &str = "run on the host's integer engine, u8 input codes times i8 weight codes summed exactly in i32 and rescaled once per output, the numbers the exported model computes";

fn f(v: f64) -> String {
    if v.abs() >= 0.01 || v == 0.0 { format!("{v:.4}") } else { format!("{v:.2e}") }
}

/// Renders `REPORT.md`.
pub fn render(input: &ReportInput, claims: &[ClaimRow], summary: &[SummaryRow]) -> String {
    let mut s = String::new();
    s.push_str(&format!("# Reproduction report: {}\n\n", input.name));
    s.push_str("Paper: *Mixed-Precision Inference Quantization: Radically Towards Faster Inference Speed, Lower Storage Requirement, and Lower Loss* (Cheng & Chen, arXiv 2207.10083).\n\n");
    s.push_str("## Summary\n\nWhat the paper's primary claims add up to, generated from `claims.csv` (adjusted verdicts: Holm's correction across the primary claims; means with 95% intervals, ΔL in nats, negative is lower loss; † (in the figure: [fragile]) marks a verdict that turns inconclusive under the Nadeau–Bengio correction).\n\n");
    s.push_str(&crate::conclusion::conclusion(claims, summary));
    if let Some((stem, title)) = input.figures.iter().find(|(stem, _)| stem == "forest_primary") {
        s.push_str(&format!("\n![{title}]({}/{stem}.svg)\n", input.figure_dir));
    }
    s.push_str("\n## Verdicts by setting\n\n");
    s.push_str(&crate::findings::summary_in_words(claims, summary));
    s.push_str("\n## Method\n\n");
    s.push_str(&format!("Layerwise post-training static quantization, {} (so results do not depend on the CPU; {}): each quantizable layer's weight ({}) and input (unsigned for non-negative inputs, affine otherwise; range calibrated on the calibration split) share one bit width and one rounding mode (nearest, floor or ceil), chosen per layer. Searches (exhaustive over 3^L configs with prefix-activation reuse, greedy coordinate descent, first-order Taylor prediction) see only the calibration split. Every claim is judged on a test split that training, calibration and search never saw. Baselines: FP32, FP32 with temperature scaling (one scalar fitted on the calibration split), all-nearest, all-floor, all-ceil, and the best of N random rounding assignments selected on the calibration split (N = the number of configs the search evaluated). ΔL is paired per seed; intervals are 95% Student-t intervals of the mean over seeds, and p-values come from the matching one-sample t-test.\n\n", input.scoring, input.trainer, input.weights));
    s.push_str("Verdicts: *reproduced* when the effect is significant at 5% in the claimed direction, *not reproduced* when it is significant in the other direction, *inconclusive* otherwise. The raw verdict uses the claim's own interval; the adjusted verdict (read it first) corrects for the number of claims: the paper's own claims (`primary`: lower loss than FP32, than FP32 with a temperature, and beyond temperature, input vs weight noise, identity mappings, mixed precision vs uniform) with Holm's family-wise method, every other row (`exploratory`) with Benjamini-Hochberg. A Student-t interval keeps its coverage at the repeat counts used (a test in `mpq-report` measures at least 93% at n = 5 and 10 for independent values). `lower-loss-than-fp-temperature` asks whether quantization beats simply calibrating the FP32 model (L(plan) − L(FP32 + T), paired by repeat); `lower-loss-beyond-temperature` separates a quantization effect from a logit-scale effect: a lower loss that disappears once both models get their own temperature is a temperature effect.\n\nRepeats are not independent: cross-fitted folds share most of their training data, so per-repeat differences are positively correlated and the plain interval is too narrow. The column *NB verdict* repeats the adjusted verdict with each standard error multiplied by √(1 + n·n_test/n_train) (Nadeau & Bengio 2003, *Inference for the Generalization Error*, the corrected resampled t-test; n repeats, n_test and n_train the split sizes); a primary verdict that changes under it is marked † as fragile. The plain verdict stays the headline: the correction was derived for random train/test resampling, not for cross-fitted folds with disjoint test sets, and a replication on disjoint digits (below, where present) is the direct check.\n\n");
    s.push_str("## Setup\n\n");
    s.push_str(input.setup);
    claims_table(&mut s, claims);
    methods_table(&mut s, summary);
    if !input.sections.is_empty() {
        s.push('\n');
        s.push_str(input.sections);
    }
    s.push_str("\n## Figures\n\n");
    for (stem, title) in input.figures {
        s.push_str(&format!("### {title}\n\n![{title}]({}/{stem}.svg)\n\n", input.figure_dir));
    }
    s.push_str("## Commands\n\n```sh\n");
    for c in input.commands {
        s.push_str(c);
        s.push('\n');
    }
    s.push_str("```\n");
    s
}

/// The claims table (primary rows first) and each claim's statement.
fn claims_table(s: &mut String, claims: &[ClaimRow]) {
    s.push_str(
        "\n\n## Claims\n\n| family | claim | setting | measurement | mean | 95% CI | p | verdict | p adjusted | adjusted verdict | NB 95% CI | NB verdict |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut ordered: Vec<&ClaimRow> = claims.iter().filter(|c| c.family == "primary").collect();
    ordered.extend(claims.iter().filter(|c| c.family != "primary"));
    for c in ordered {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | [{}, {}] | {} | {} | {} | **{}**{} | [{}, {}] | {} |\n",
            c.family,
            c.claim,
            c.setting,
            c.measurement,
            f(c.value),
            f(c.lo),
            f(c.hi),
            f(c.p_value),
            c.verdict,
            f(c.p_adjusted),
            c.verdict_adjusted,
            if crate::fragile::is_fragile(c) && c.family == "primary" { " †" } else { "" },
            f(c.lo_nb),
            f(c.hi_nb),
            c.verdict_nb
        ));
    }
    let mut statements: Vec<(&str, &str)> = claims.iter().map(|c| (c.claim.as_str(), c.statement.as_str())).collect();
    statements.dedup();
    statements.sort();
    statements.dedup();
    s.push_str("\nClaims as stated:\n\n");
    for (id, st) in statements {
        s.push_str(&format!("- `{id}`: {st}.\n"));
    }
}

/// One row per model, backend, width and method.
fn methods_table(s: &mut String, summary: &[SummaryRow]) {
    s.push_str("\n## All methods\n\n| model | backend | bits | method | seeds | test loss | test acc | ΔL mean | ΔL 95% CI | seeds with ΔL<0 |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for r in summary {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.4} | {} | [{}, {}] | {:.0}% |\n",
            r.model,
            r.backend,
            r.bits,
            r.method,
            r.seeds,
            f(r.test_loss),
            r.test_acc,
            f(r.delta_mean),
            f(r.delta_lo),
            f(r.delta_hi),
            100.0 * r.frac_negative
        ));
    }
}
