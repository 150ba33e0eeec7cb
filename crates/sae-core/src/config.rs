//! The SAE configuration: the fields every architecture shares, plus its own hyperparameters.
//!
//! The JSON form is SAELens's `cfg.json`: a flat object whose `architecture` key is the tag that
//! selects the architecture in the [`Registry`](crate::Registry). Architecture-specific keys (`k`,
//! `jumprelu_bandwidth`, ...) and anything else in the file (`metadata`, `device`, ...) are kept in
//! [`SaeConfig::extra`] and written back unchanged, so a file round-trips. Each architecture reads
//! its own keys with [`SaeConfig::hyper`] into a typed struct.

use std::path::Path;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::error::{Result, SaeError};

/// How activations are normalised before encoding (SAELens's `normalize_activations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// No normalisation.
    #[default]
    None,
    /// Training-time scaling to E‖x‖ = √d_in; folded into the weights on save, so at inference it
    /// is the identity (as in SAELens).
    ExpectedAverageOnlyIn,
    /// Each row is scaled to norm √d_in before encoding and scaled back after decoding.
    ConstantNormRescale,
    /// Each row is standardised (mean 0, unbiased std 1, eps 1e-5) and un-standardised after decoding.
    LayerNorm,
    /// Training-time whitening, folded into the weights on save: the identity at inference.
    CovarianceWhitening,
}

impl Normalization {
    /// Whether this normalisation changes activations at inference time.
    pub fn is_runtime(self) -> bool {
        matches!(self, Normalization::ConstantNormRescale | Normalization::LayerNorm)
    }
}

fn default_true() -> bool {
    true
}

fn default_dtype() -> String {
    "float32".to_string()
}

/// Configuration of one SAE: shared fields plus architecture hyperparameters in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaeConfig {
    /// Registered architecture name (the tag), e.g. `"topk"`.
    pub architecture: String,
    /// Input width.
    pub d_in: usize,
    /// Number of latents (dictionary size).
    pub d_sae: usize,
    /// Output width for transcoders; `None` means `d_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_out: Option<usize>,
    /// Subtract `b_dec` from the input before encoding.
    #[serde(default = "default_true")]
    pub apply_b_dec_to_input: bool,
    /// Activation normalisation.
    #[serde(default)]
    pub normalize_activations: Normalization,
    /// Storage dtype of the weights (`float32`, `float16`, `bfloat16`); computation is f32.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// Architecture hyperparameters and any other keys, preserved in order.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SaeConfig {
    /// The keys of `cfg.json` that are fields of every config rather than an architecture's
    /// hyperparameters.
    pub const SHARED_KEYS: [&'static str; 7] = ["architecture", "d_in", "d_sae", "d_out", "apply_b_dec_to_input", "normalize_activations", "dtype"];

    /// A config with defaults for the shared fields and no hyperparameters.
    pub fn new(architecture: &str, d_in: usize, d_sae: usize) -> Self {
        Self {
            architecture: architecture.to_string(),
            d_in,
            d_sae,
            d_out: None,
            apply_b_dec_to_input: true,
            normalize_activations: Normalization::None,
            dtype: default_dtype(),
            extra: Map::new(),
        }
    }

    /// Checks that the widths are positive and that every weight matrix they imply
    /// (`[d_sae, max(d_in, d_out)]`, and `[d_out, d_in]` for a skip connection) can be addressed
    /// as f32 bytes: sizes from a file or a flag are never multiplied unchecked.
    pub fn check_sizes(&self, origin: &Path) -> Result<()> {
        for (field, v) in [("d_in", self.d_in), ("d_sae", self.d_sae), ("d_out", self.d_out())] {
            if v == 0 {
                return Err(SaeError::config(origin, field, "must be positive"));
            }
        }
        let bytes = |a: usize, b: usize| a.checked_mul(b).and_then(|n| n.checked_mul(4)).filter(|n| *n <= isize::MAX as usize);
        let widest = self.d_in.max(self.d_out());
        if bytes(self.d_sae, widest).is_none() || bytes(self.d_in, self.d_out()).is_none() {
            return Err(SaeError::config(origin, "d_sae", format!("a [{}, {widest}] f32 matrix is larger than memory can address", self.d_sae)));
        }
        Ok(())
    }

    /// Output width (`d_out`, or `d_in` when unset).
    pub fn d_out(&self) -> usize {
        self.d_out.unwrap_or(self.d_in)
    }

    /// Sets a hyperparameter (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// Parses a config from JSON text; `path` is used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| SaeError::config(path, "-", format!("not valid JSON: {e}")))?;
        Self::from_json_value(value, path)
    }

    /// Parses a config from a JSON value, naming the first bad field in the error.
    pub fn from_json_value(value: Value, path: &Path) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(SaeError::config(path, "-", "expected a JSON object"));
        };
        for (field, kind) in [("d_in", "a positive integer"), ("d_sae", "a positive integer")] {
            match map.get(field) {
                None => return Err(SaeError::config(path, field, "missing")),
                Some(v) if v.as_u64().is_none_or(|n| n == 0) => {
                    return Err(SaeError::config(path, field, format!("must be {kind}, got {v}")));
                }
                _ => {}
            }
        }
        match map.get("architecture") {
            Some(Value::String(_)) => {}
            None => return Err(SaeError::config(path, "architecture", "missing")),
            Some(v) => return Err(SaeError::config(path, "architecture", format!("must be a string, got {v}"))),
        }
        // With a flattened `extra`, serde's messages do not name the field: check each shared
        // field on its own first so that the error can.
        fn check<T: DeserializeOwned>(map: &Map<String, Value>, path: &Path, field: &str) -> Result<()> {
            match map.get(field) {
                Some(v) => serde_json::from_value::<T>(v.clone()).map(|_| ()).map_err(|e| SaeError::config(path, field, e.to_string())),
                None => Ok(()),
            }
        }
        check::<Normalization>(&map, path, "normalize_activations")?;
        check::<bool>(&map, path, "apply_b_dec_to_input")?;
        check::<Option<usize>>(&map, path, "d_out")?;
        check::<String>(&map, path, "dtype")?;
        serde_json::from_value(Value::Object(map)).map_err(|e| {
            let msg = e.to_string();
            let field = ["normalize_activations", "apply_b_dec_to_input", "d_out", "dtype"]
                .into_iter()
                .find(|f| msg.contains(f))
                .unwrap_or("-");
            SaeError::config(path, field, msg)
        })
    }

    /// The config as a JSON value (the `cfg.json` form).
    pub fn to_json_value(&self) -> Value {
        // Serialising plain data into a `Value` cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads the architecture's hyperparameters into `T` (whose fields should carry serde
    /// defaults). Keys `T` does not know are ignored here: they belong to the shared fields or
    /// to metadata. A key of the wrong type is an error naming that key.
    pub fn hyper<T: DeserializeOwned>(&self, path: &Path) -> Result<T> {
        serde_path_to_error::deserialize(Value::Object(self.extra.clone())).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { "-".to_string() } else { field };
            SaeError::config(path, field, e.into_inner().to_string())
        })
    }

    /// Writes typed hyperparameters back into `extra` (overwriting the keys `T` serialises).
    pub fn set_hyper<T: Serialize>(&mut self, hyper: &T) {
        if let Ok(Value::Object(map)) = serde_json::to_value(hyper) {
            for (k, v) in map {
                self.extra.insert(k, v);
            }
        }
    }
}

/// Returns an error for `field` when `ok` is false.
pub fn ensure(ok: bool, path: &Path, field: &str, reason: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(SaeError::config(path, field, reason())) }
}

/// The field names serde's derive gives the struct `T`, or `None` when `T` does not deserialize
/// as a plain struct (a map, or a struct with `#[serde(flatten)]` fields). Read by asking `T`
/// to deserialize from a probe that records what it is asked for: no value is parsed.
pub fn field_names<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    use serde::de::{Error as _, Visitor};
    struct Probe<'a>(&'a mut Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> std::result::Result<V::Value, Self::Error> {
            Err(Self::Error::custom("field probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(self, _name: &'static str, fields: &'static [&'static str], _visitor: V) -> std::result::Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(Self::Error::custom("field probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = None;
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAELENS_CFG: &str = r#"{"d_in": 16, "d_sae": 64, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": true,
        "normalize_activations": "none", "reshape_activations": "none", "metadata": {"sae_lens_version": "6.54.12", "hook_name": "blocks.0.hook_resid_post"},
        "k": 6, "rescale_acts_by_decoder_norm": false, "architecture": "topk"}"#;

    #[test]
    fn field_names_are_those_of_the_struct() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct H {
            k: usize,
            #[serde(rename = "aux")]
            aux_coefficient: f32,
        }
        assert_eq!(super::field_names::<H>(), Some(&["k", "aux"][..]));
        assert_eq!(super::field_names::<std::collections::BTreeMap<String, f32>>(), None);
    }

    #[test]
    fn cfg_json_round_trips_with_unknown_keys() {
        let original: Value = serde_json::from_str(SAELENS_CFG).unwrap();
        let cfg = SaeConfig::from_json_str(SAELENS_CFG, Path::new("cfg.json")).unwrap();
        assert_eq!(cfg.architecture, "topk");
        assert_eq!((cfg.d_in, cfg.d_sae, cfg.d_out()), (16, 64, 16));
        assert_eq!(cfg.to_json_value(), original);
    }

    #[test]
    fn typed_hyperparameters_and_field_errors() {
        #[derive(Debug, Deserialize)]
        struct H {
            k: usize,
        }
        let cfg = SaeConfig::from_json_str(SAELENS_CFG, Path::new("cfg.json")).unwrap();
        assert_eq!(cfg.hyper::<H>(Path::new("cfg.json")).unwrap().k, 6);
        let bad = cfg.clone().with("k", "six");
        let err = bad.hyper::<H>(Path::new("x/cfg.json")).unwrap_err().to_string();
        assert!(err.contains("x/cfg.json") && err.contains("`k`"), "{err}");
    }

    #[test]
    fn missing_and_invalid_shared_fields_name_the_field() {
        for (text, field) in [
            (r#"{"d_sae": 4, "architecture": "topk"}"#, "d_in"),
            (r#"{"d_in": 0, "d_sae": 4, "architecture": "topk"}"#, "d_in"),
            (r#"{"d_in": 4, "d_sae": 4}"#, "architecture"),
            (r#"{"d_in": 4, "d_sae": 4, "architecture": "topk", "normalize_activations": "often"}"#, "normalize_activations"),
            (r#"[1, 2]"#, "-"),
        ] {
            match SaeConfig::from_json_str(text, Path::new("c.json")) {
                Err(SaeError::Config { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
