//! One line of `metrics.jsonl`: what the trainer logs for one SAE at one step, as a typed
//! struct that the trainer writes, and the training-curve plot and anything else that reads the
//! log parse back (instead of maps of strings).

use serde::{Deserialize, Serialize};

/// The metrics of one SAE after one optimisation step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// The architecture's named loss terms, in the order it reports them (already weighted by
    /// their coefficients; names from `sae_core::loss_terms`). In the JSON line they are keys of
    /// their own (`"mse_loss": …`), as SAELens and sparsify log them.
    #[serde(flatten, with = "terms_as_keys")]
    pub terms: Vec<(String, f64)>,
    /// The total loss (the sum of the terms).
    pub loss: f64,
    /// Mean active latents per row.
    pub l0: f64,
    /// Fraction of variance unexplained on the batch.
    pub fvu: f64,
    /// Fraction of latents that have not fired within the dead window.
    pub dead_fraction: f64,
    /// Gradient norm before clipping, when clipping is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// Steps taken (1-based).
    pub step: u64,
    /// Rows (tokens) read from the store so far.
    pub tokens: u64,
    /// The SAE's name in a multi-SAE run.
    pub sae: String,
    /// The learning rate of the step.
    pub lr: f64,
}

/// The quantities drawn as training curves, one panel each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// [`StepMetrics::loss`].
    Loss,
    /// [`StepMetrics::fvu`].
    Fvu,
    /// [`StepMetrics::l0`].
    L0,
    /// [`StepMetrics::dead_fraction`].
    DeadFraction,
}

impl Curve {
    /// Every curve, in panel order.
    pub const ALL: [Curve; 4] = [Curve::Loss, Curve::Fvu, Curve::L0, Curve::DeadFraction];

    /// The panel's title (the metric's name in the log).
    pub fn name(self) -> &'static str {
        match self {
            Curve::Loss => "loss",
            Curve::Fvu => "fvu",
            Curve::L0 => "l0",
            Curve::DeadFraction => "dead_fraction",
        }
    }

    /// The value of this curve in `m`.
    pub fn value(self, m: &StepMetrics) -> f64 {
        match self {
            Curve::Loss => m.loss,
            Curve::Fvu => m.fvu,
            Curve::L0 => m.l0,
            Curve::DeadFraction => m.dead_fraction,
        }
    }
}

impl StepMetrics {
    /// One JSON line (no newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("a struct of numbers and strings always serialises: {e}"))
    }

    /// Parses one line of the log; `None` for a line that is not a metrics line.
    pub fn from_json_line(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

/// [`StepMetrics::terms`] as keys of the line's object, in order; on reading, every key that is
/// not a named field and holds a number.
mod terms_as_keys {
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(terms: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(terms.len()))?;
        for (k, v) in terms {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
        struct Terms;
        impl<'de> Visitor<'de> for Terms {
            type Value = Vec<(String, f64)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("loss terms as numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    if let Some(v) = v.as_f64() {
                        out.push((k, v));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Terms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_and_curves_read_their_fields() {
        let m = StepMetrics {
            terms: vec![("mse_loss".into(), 0.5), ("auxiliary_reconstruction_loss".into(), 0.25)],
            loss: 0.75,
            l0: 32.0,
            fvu: 0.1,
            dead_fraction: 0.02,
            grad_norm: None,
            step: 7,
            tokens: 7168,
            sae: "sae".into(),
            lr: 2e-4,
        };
        let line = m.to_json_line();
        assert!(!line.contains("grad_norm"), "absent, not null: {line}");
        assert!(line.starts_with("{\"mse_loss\":0.5,\"auxiliary_reconstruction_loss\":0.25,\"loss\":0.75,"), "terms first, as keys: {line}");
        assert_eq!(StepMetrics::from_json_line(&line), Some(m.clone()));
        assert_eq!(Curve::ALL.map(|c| c.value(&m)), [0.75, 0.1, 32.0, 0.02]);
        assert_eq!(StepMetrics::from_json_line("{\"not\": \"metrics\"}"), None);
    }
}
