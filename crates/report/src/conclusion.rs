//! The conclusion in words: one short paragraph per family of primary claims, saying what
//! the adjusted verdicts add up to, with the key numbers and their intervals. Written from
//! the claim and summary tables by rules (never by hand), so a changed verdict changes the
//! sentence; the tests below build rows and flip them.

use crate::findings::setting;
use crate::fragile::is_fragile;
use crate::{ClaimRow, Method, SummaryRow};

/// A number for prose: three decimals, or two significant digits when smaller.
fn num(v: f64) -> String {
    if v.abs() >= 0.001 || v == 0.0 { format!("{v:+.3}") } else { format!("{v:+.1e}") }
}

/// "mean [lo, hi]".
fn with_ci(mean: f64, lo: f64, hi: f64) -> String {
    format!("{} [{}, {}]", num(mean), num(lo), num(hi))
}

/// "setting mean [lo, hi]" for each row, joined; a fragile verdict gets its mark.
fn list(rows: &[&ClaimRow]) -> String {
    let one = |c: &&ClaimRow| {
        let mark = if is_fragile(c) { " †" } else { "" };
        format!("{} {}{mark}", setting(c), with_ci(c.value, c.lo, c.hi))
    };
    rows.iter().map(one).collect::<Vec<_>>().join("; ")
}

/// The rows of one claim id with the given adjusted verdict.
fn with<'a>(claims: &'a [ClaimRow], id: &str, verdict: &str) -> Vec<&'a ClaimRow> {
    claims.iter().filter(|c| c.claim == id && c.verdict_adjusted == verdict).collect()
}

fn count(claims: &[ClaimRow], id: &str) -> usize {
    claims.iter().filter(|c| c.claim == id).count()
}

/// "in k of n settings (list)", or "in none of the n settings".
fn where_(rows: &[&ClaimRow], n: usize) -> String {
    if rows.is_empty() {
        format!("in none of the {n} settings")
    } else {
        format!("in {} of {n} settings ({})", rows.len(), list(rows))
    }
}

/// What a family's verdicts add up to, from how many settings hold and how many go against.
fn judgement(holds: usize, against: usize, n: usize) -> &'static str {
    match (holds, against) {
        (h, 0) if h == n => "It holds in every setting.",
        (0, 0) => "No setting is decisive: these data neither support nor refute it.",
        (0, _) => "The evidence goes against it.",
        (_, 0) => "It holds in some settings and never the opposite way: not in general.",
        _ => "Its direction depends on the setting: it does not hold in general.",
    }
}

/// The paragraph of a one-claim family: where it holds, where the opposite holds, and the
/// judgement.
fn family(claims: &[ClaimRow], id: &str, title: &str) -> Option<String> {
    let n = count(claims, id);
    let measure = claims.iter().find(|c| c.claim == id)?.measurement.clone();
    let (yes, no) = (with(claims, id, "reproduced"), with(claims, id, "not reproduced"));
    let mut s = format!("- **{title}** Holds {}", where_(&yes, n));
    if !no.is_empty() {
        s.push_str(&format!("; the opposite holds {}", where_(&no, n)));
    }
    s.push_str(&format!(". {} (Measured as {measure}.)\n", judgement(yes.len(), no.len(), n)));
    Some(s)
}

/// The FP32 + temperature effect per model: "model mean [lo, hi]".
fn temperature(summary: &[SummaryRow], claims: &[ClaimRow]) -> Vec<String> {
    let mut models: Vec<&str> =
        claims.iter().filter(|c| c.claim == "lower-loss").map(|c| crate::fragile::model_of(&c.setting)).collect();
    models.dedup();
    models
        .iter()
        .filter_map(|m| summary.iter().find(|r| r.model == *m && r.method == Method::FpTemp))
        .map(|r| format!("{} {}", r.model, with_ci(r.delta_mean, r.delta_lo, r.delta_hi)))
        .collect()
}

/// All-floor settings whose test ΔL lies below zero with 95% confidence (unadjusted), at
/// widths where the search lowers the loss: a plan that shrinks every value toward zero
/// gaining too points at logit shrinkage.
fn floor_gains(summary: &[SummaryRow], gains: &[&ClaimRow]) -> Vec<String> {
    summary
        .iter()
        .filter(|r| r.method == Method::Floor && r.delta_hi < 0.0)
        .filter(|r| gains.iter().any(|c| setting(c) == format!("{} {}-bit", r.model, r.bits)))
        .map(|r| format!("{} {}-bit {}", r.model, r.bits, with_ci(r.delta_mean, r.delta_lo, r.delta_hi)))
        .collect()
}

/// The lower-loss family: against raw FP32, against FP32 with a temperature, and once both
/// have one; then whether the gain is more than a temperature effect.
fn lower_loss(claims: &[ClaimRow], summary: &[SummaryRow]) -> Option<String> {
    let n = count(claims, "lower-loss");
    if n == 0 {
        return None;
    }
    let yes = with(claims, "lower-loss", "reproduced");
    let mut s = format!(
        "- **Lower loss than FP32.** The searched floor/ceil/nearest plan has a lower test loss than raw FP32 {}",
        where_(&yes, n)
    );
    let no = with(claims, "lower-loss", "not reproduced");
    if !no.is_empty() {
        s.push_str(&format!(" and a higher one {}", where_(&no, n)));
    }
    s.push('.');
    let t = temperature(summary, claims);
    if !t.is_empty() {
        s.push_str(&format!(
            " FP32 with a temperature fitted on calibration alone changes the loss by {}.",
            t.join("; ")
        ));
    }
    let nt = count(claims, "lower-loss-than-fp-temperature");
    let beats_t = with(claims, "lower-loss-than-fp-temperature", "reproduced");
    if nt > 0 {
        s.push_str(&format!(
            " Paired by repeat against that calibrated FP32, the plan is lower {}",
            where_(&beats_t, nt)
        ));
        let worse = with(claims, "lower-loss-than-fp-temperature", "not reproduced");
        if !worse.is_empty() {
            let (lo, hi) =
                worse.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), c| (a.min(c.value), b.max(c.value)));
            s.push_str(&format!(" and higher in {} of {nt} (by {} to {} nats)", worse.len(), num(lo), num(hi)));
        }
        s.push('.');
    }
    let nb = count(claims, "lower-loss-beyond-temperature");
    let beyond = with(claims, "lower-loss-beyond-temperature", "reproduced");
    if nb > 0 {
        s.push_str(&format!(" Once both get their own temperature, the plan is lower {}", where_(&beyond, nb)));
        s.push_str(if beyond.is_empty() { ": no setting reliably favours quantization." } else { "." });
    }
    let floor = floor_gains(summary, &yes);
    if !floor.is_empty() {
        s.push_str(&format!(" All-floor rounding alone, which shrinks every value toward zero, lowers the loss as well ({}): a sign that the gain is logit shrinkage.", floor.join("; ")));
    }
    s.push_str(match (yes.is_empty(), beats_t.is_empty() && beyond.is_empty()) {
        (true, _) => " So the claim is not supported here.\n",
        (false, true) => " So the lower loss is what a temperature gives FP32 too: quantization does not beat calibrating the FP32 model.\n",
        (false, false) => " So in the settings listed against calibrated FP32, quantization gains more than a temperature does.\n",
    });
    Some(s)
}

/// How many significant primary verdicts turn inconclusive under the Nadeau–Bengio interval.
fn fragility(claims: &[ClaimRow]) -> Option<String> {
    let primary: Vec<&ClaimRow> = claims.iter().filter(|c| c.family == "primary").collect();
    let significant = primary.iter().filter(|c| c.verdict_adjusted != "inconclusive").count();
    // Models whose repeats share no training data (imported ones) get no inflation: nothing to say.
    if significant == 0 || primary.iter().all(|c| c.se_factor <= 1.0) {
        return None;
    }
    let fragile: Vec<String> =
        primary.iter().filter(|c| is_fragile(c)).map(|c| format!("{} {}", c.claim, setting(c))).collect();
    let factors = primary.iter().map(|c| c.se_factor);
    let (lo, hi) = factors.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), f| (a.min(f), b.max(f)));
    let range = if hi - lo < 0.005 { format!("{hi:.2}") } else { format!("{lo:.2} to {hi:.2}") };
    let head = format!(
        "- **Fragile verdicts.** The repeats share most of their training digits; widening each standard error by the Nadeau–Bengio factor √(1 + n·n_test/n_train) ({range} here)"
    );
    Some(if fragile.is_empty() {
        format!("{head} leaves all {significant} significant primary verdicts as they are.\n")
    } else {
        format!(
            "{head} turns {} of the {significant} significant primary verdicts inconclusive, marked †: {}.\n",
            fragile.len(),
            fragile.join("; ")
        )
    })
}

/// The report's first screen: one markdown bullet per family of primary claims.
pub fn conclusion(claims: &[ClaimRow], summary: &[SummaryRow]) -> String {
    let parts = [
        lower_loss(claims, summary),
        family(claims, "input-vs-weight", "Layer-input noise dominates weight noise."),
        family(claims, "identity-mappings", "Identity mappings resist quantization (searched plan)."),
        family(claims, "identity-mappings-nearest", "Identity mappings resist quantization (all-nearest)."),
        family(claims, "mixed-beats-uniform", "Mixed precision beats uniform bits at the same storage."),
        family(claims, "mixed-rounding-beats-uniform", "Mixed precision with per-layer floor/ceil beats uniform bits."),
        fragility(claims),
    ];
    parts.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, setting: &str, value: f64, verdict: &str) -> ClaimRow {
        ClaimRow {
            claim: id.into(),
            family: "primary".into(),
            setting: setting.into(),
            measurement: "a difference".into(),
            value,
            lo: value - 0.01,
            hi: value + 0.01,
            verdict_adjusted: verdict.into(),
            verdict_nb: verdict.into(),
            se_factor: 1.5,
            ..ClaimRow::default()
        }
    }

    fn summary() -> Vec<SummaryRow> {
        let r = |method, bits, d: f64| SummaryRow {
            model: "mlp".into(),
            method,
            bits,
            delta_mean: d,
            delta_lo: d - 0.005,
            delta_hi: d + 0.005,
            ..SummaryRow::default()
        };
        vec![r(Method::FpTemp, 32, -0.04), r(Method::Floor, 8, -0.017)]
    }

    fn claims(vs_temp: &str, beyond: &str) -> Vec<ClaimRow> {
        vec![
            row("lower-loss", "mlp, 8-bit, exhaustive", -0.02, "reproduced"),
            row("lower-loss", "mlp, 4-bit, exhaustive", 0.3, "not reproduced"),
            row("lower-loss-than-fp-temperature", "mlp, 8-bit, exhaustive", 0.02, vs_temp),
            row("lower-loss-beyond-temperature", "mlp, 8-bit, exhaustive", -0.002, beyond),
            row("input-vs-weight", "mlp, 8-bit", 0.001, "inconclusive"),
        ]
    }

    #[test]
    fn the_lower_loss_paragraph_says_whether_quantization_beats_a_temperature() {
        let s = conclusion(&claims("inconclusive", "inconclusive"), &summary());
        assert!(s.contains("raw FP32 in 1 of 2 settings (mlp 8-bit -0.020 [-0.030, -0.010])"), "{s}");
        assert!(s.contains("a higher one in 1 of 2 settings (mlp 4-bit +0.300"), "{s}");
        assert!(s.contains("alone changes the loss by mlp -0.040 [-0.045, -0.035]"), "{s}");
        assert!(s.contains("no setting reliably favours quantization"), "{s}");
        assert!(s.contains("All-floor rounding alone") && s.contains("mlp 8-bit -0.017"), "{s}");
        assert!(s.contains("quantization does not beat calibrating the FP32 model"), "{s}");
        // The paired claim flips: the conclusion says so.
        let s = conclusion(&claims("reproduced", "inconclusive"), &summary());
        assert!(s.contains("the plan is lower in 1 of 1 settings (mlp 8-bit +0.020"), "{s}");
        assert!(s.contains("quantization gains more than a temperature does"), "{s}");
        assert!(!s.contains("does not beat calibrating"), "{s}");
        let s = conclusion(&claims("not reproduced", "reproduced"), &summary());
        assert!(s.contains("and higher in 1 of 1") && !s.contains("no setting reliably"), "{s}");
    }

    #[test]
    fn a_family_s_judgement_follows_its_verdicts() {
        let mut c = claims("inconclusive", "inconclusive");
        let s = conclusion(&c, &summary());
        assert!(s.contains("weight noise.** Holds in none of the 1 settings. No setting is decisive"), "{s}");
        c[4].verdict_adjusted = "reproduced".into();
        let s = conclusion(&c, &summary());
        assert!(
            s.contains("Holds in 1 of 1 settings (mlp 8-bit +0.001 [-0.009, +0.011] †). It holds in every setting."),
            "{s}"
        );
        c.push(row("input-vs-weight", "cnn, 4-bit", -0.002, "not reproduced"));
        let s = conclusion(&c, &summary());
        assert!(s.contains("the opposite holds in 1 of 2 settings (cnn 4-bit"), "{s}");
        assert!(s.contains("Its direction depends on the setting"), "{s}");
        assert!(
            s.contains(
                "turns 1 of the 4 significant primary verdicts inconclusive, marked †: input-vs-weight mlp 8-bit"
            ),
            "{s}"
        );
        assert!(s.contains("(1.50 here)"), "{s}");
        assert_eq!(judgement(0, 2, 3), "The evidence goes against it.");
        assert!(judgement(1, 0, 3).starts_with("It holds in some settings"));
    }
}
