//! The `sae` binary end to end: encode, convert, info, and every kind of bad input giving a
//! non-zero exit with a message naming the file and field (never a panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sae_core::format::npy::{read_npy, write_npy};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference").join(name)
}

fn sae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sae")).args(args).output().expect("running sae")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// Asserts `ours` matches a PyTorch f32 fixture within the f32 error model
/// (`sae_core::tolerance`), relative to the fixture's largest value: the encode and decode of
/// these 16 → 64 SAEs are chains of at most 4 products, inner dimensions ≤ 64.
fn assert_matches_fixture(label: &str, ours: &[f32], theirs: &[f32]) {
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let (err, tol) = (max_abs_diff(ours, theirs) / scale, sae_core::tolerance::network_depth(4, 64, 1.0) as f32);
    assert!(err <= tol, "{label}: relative difference {err:.3e} > {tol:.3e}; on {}", sae_kernels::host::describe());
}

/// Asserts a clean failure whose message contains every needle.
fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr does not mention `{n}`: {err}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn encode_reproduces_reference_codes_and_reconstructions() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["saelens_jumprelu", "sparsify_groupmax", "saelens_skip_transcoder"] {
        let dir = fixture(name);
        let (codes, recon) = (tmp.path().join(format!("{name}-c.npy")), tmp.path().join(format!("{name}-r.npy")));
        let out = sae(&["encode", "--sae", s(&dir), "--input", s(&dir.join("x.npy")), "--codes", s(&codes), "--recon", s(&recon), "--batch-size", "3"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let want_c = read_npy(&dir.join("codes.npy")).unwrap();
        let got_c = read_npy(&codes).unwrap();
        assert_eq!(got_c.shape, want_c.shape);
        assert_matches_fixture(&format!("{name} codes"), &got_c.values, &want_c.values);
        assert_matches_fixture(&format!("{name} reconstruction"), &read_npy(&recon).unwrap().values, &read_npy(&dir.join("output.npy")).unwrap().values);
    }
}

#[test]
fn convert_between_formats_keeps_the_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture("saelens_topk");
    let sp = tmp.path().join("as-sparsify");
    let back = tmp.path().join("back-to-saelens");
    let out = sae(&["convert", "--from", s(&src), "--to", s(&sp), "--format", "sparsify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sp.join("sae.safetensors").is_file() && sp.join("cfg.json").is_file());
    let out = sae(&["convert", "--from", s(&sp), "--to", s(&back), "--format", "saelens", "--dtype", "float32"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for dir in [&sp, &back] {
        let codes = tmp.path().join("c.npy");
        let out = sae(&["encode", "--sae", s(dir), "--input", s(&src.join("x.npy")), "--codes", s(&codes)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_matches_fixture("converted codes", &read_npy(&codes).unwrap().values, &read_npy(&src.join("codes.npy")).unwrap().values);
    }
    // Into a directory that holds an SAE of the other format: refused; with --force the
    // directory holds only the new one, which loads as that format.
    let out = sae(&["convert", "--from", s(&src), "--to", s(&sp), "--format", "saelens"]);
    fails_with(&out, &["already holds an SAE", "--force"]);
    let out = sae(&["convert", "--from", s(&src), "--to", s(&sp), "--format", "saelens", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sp.join("sae_weights.safetensors").is_file() && !sp.join("sae.safetensors").exists());
    let info = sae(&["info", "--sae", s(&sp)]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("saelens"), "{}", String::from_utf8_lossy(&info.stdout));
    // A JumpReLU SAE has no place in sparsify's format: a clear refusal.
    let out = sae(&["convert", "--from", s(&fixture("saelens_jumprelu")), "--to", s(&tmp.path().join("x")), "--format", "sparsify"]);
    fails_with(&out, &["sparsify", "jumprelu"]);
}

#[test]
fn info_describes_architecture_sizes_and_unusual_things() {
    let out = sae(&["info", "--sae", s(&fixture("saelens_topk_f16"))]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["saelens", "topk", "d_in 16", "d_sae 64", "float16", "not unit-norm"] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    let out = sae(&["info", "--sae", s(&fixture("saelens_standard_no_bdec")), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["architecture"], "standard");
    assert!(v["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("not centred")));
}

#[test]
fn bad_configs_are_typed_errors_naming_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let x = fixture("saelens_topk").join("x.npy");
    let codes = tmp.path().join("c.npy");
    let cases: Vec<(&str, Box<dyn Fn(&Path)>, Vec<&str>)> = vec![
        ("malformed_json", Box::new(|d: &Path| std::fs::write(d.join("cfg.json"), "{ not json").unwrap()), vec!["cfg.json", "not valid JSON"]),
        ("missing_d_in", Box::new(|d: &Path| edit_cfg(d, |v| { v.as_object_mut().unwrap().remove("d_in"); })), vec!["cfg.json", "d_in", "missing"]),
        ("unknown_arch", Box::new(|d: &Path| edit_cfg(d, |v| v["architecture"] = "no_such_arch".into())), vec!["no_such_arch", "cfg.json", "topk"]),
        ("k_too_large", Box::new(|d: &Path| edit_cfg(d, |v| v["k"] = 1000.into())), vec!["cfg.json", "`k`"]),
        ("k_wrong_type", Box::new(|d: &Path| edit_cfg(d, |v| v["k"] = "six".into())), vec!["cfg.json", "k"]),
        ("bad_normalization", Box::new(|d: &Path| edit_cfg(d, |v| v["normalize_activations"] = "sometimes".into())), vec!["cfg.json", "normalize_activations"]),
    ];
    for (label, mutate, needles) in cases {
        let dir = tmp.path().join(label);
        copy_dir(&fixture("saelens_topk"), &dir);
        mutate(&dir);
        let out = sae(&["encode", "--sae", s(&dir), "--input", s(&x), "--codes", s(&codes)]);
        fails_with(&out, &needles);
    }
}

fn edit_cfg(dir: &Path, f: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("cfg.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

fn write_weights(dir: &Path, tensors: Vec<(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)>) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(dir.join("sae_weights.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();
}

fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32 * 0.01).to_le_bytes()).collect()
}

#[test]
fn bad_weights_are_typed_errors_naming_file_and_tensor() {
    use safetensors::Dtype::{F32, I64};
    let tmp = tempfile::tempdir().unwrap();
    let x = fixture("saelens_topk").join("x.npy");
    let codes = tmp.path().join("c.npy");
    let full = |skip: &str, wrong: Option<&str>, dtype: safetensors::Dtype| -> Vec<(&'static str, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
        let mut v = Vec::new();
        for (n, shape) in [("W_enc", vec![16usize, 64]), ("b_enc", vec![64]), ("W_dec", vec![64, 16]), ("b_dec", vec![16])] {
            if n == skip {
                continue;
            }
            let shape = if Some(n) == wrong { vec![shape[0] + 1; shape.len()] } else { shape };
            let count: usize = shape.iter().product();
            let d = if Some(n) == Some("W_dec") && dtype != F32 { dtype } else { F32 };
            let bytes = if d == I64 { vec![0u8; count * 8] } else { f32_bytes(count) };
            v.push((n, d, shape, bytes));
        }
        v
    };
    let cases = vec![
        ("missing_tensor", full("W_dec", None, F32), vec!["sae_weights.safetensors", "W_dec", "missing"]),
        ("wrong_shape", full("", Some("b_enc"), F32), vec!["b_enc", "shape"]),
        ("int_dtype", full("", None, I64), vec!["W_dec", "unsupported dtype"]),
    ];
    for (label, tensors, needles) in cases {
        let dir = tmp.path().join(label);
        copy_dir(&fixture("saelens_topk"), &dir);
        write_weights(&dir, tensors);
        fails_with(&sae(&["encode", "--sae", s(&dir), "--input", s(&x), "--codes", s(&codes)]), &needles);
    }
    // Truncated weights file.
    let dir = tmp.path().join("truncated");
    copy_dir(&fixture("saelens_topk"), &dir);
    let w = dir.join("sae_weights.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&sae(&["encode", "--sae", s(&dir), "--input", s(&x), "--codes", s(&codes)]), &["sae_weights.safetensors", "corrupt"]);
    // Not an SAE directory at all.
    fails_with(&sae(&["info", "--sae", s(tmp.path())]), &["not an SAE directory"]);
}

#[test]
fn bad_activations_are_typed_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture("saelens_topk");
    let codes = tmp.path().join("c.npy");
    let nan = tmp.path().join("nan.npy");
    let mut v = vec![0.5f32; 4 * 16];
    v[2 * 16 + 5] = f32::NAN;
    v[3 * 16] = f32::INFINITY;
    write_npy(&nan, &[4, 16], &v).unwrap();
    fails_with(&sae(&["encode", "--sae", s(&dir), "--input", s(&nan), "--codes", s(&codes)]), &["nan.npy", "2 non-finite", "row 2, column 5"]);
    let wide = tmp.path().join("wide.npy");
    write_npy(&wide, &[3, 17], &vec![0.1; 51]).unwrap();
    fails_with(&sae(&["encode", "--sae", s(&dir), "--input", s(&wide), "--codes", s(&codes)]), &["wide.npy", "[3, 17]", "[3, 16]"]);
    let flat = tmp.path().join("flat.npy");
    write_npy(&flat, &[16], &vec![0.1; 16]).unwrap();
    fails_with(&sae(&["encode", "--sae", s(&dir), "--input", s(&flat), "--codes", s(&codes)]), &["flat.npy", "shape"]);
    let junk = tmp.path().join("junk.npy");
    std::fs::write(&junk, b"definitely not numpy").unwrap();
    fails_with(&sae(&["encode", "--sae", s(&dir), "--input", s(&junk), "--codes", s(&codes)]), &["junk.npy", "npy"]);
    fails_with(&sae(&["encode", "--sae", s(&dir), "--input", s(&tmp.path().join("absent.npy")), "--codes", s(&codes)]), &["absent.npy"]);
    assert!(!codes.exists(), "no partial output after a failure");
}

#[test]
fn store_export_writes_the_first_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = sae(&["synth", "--out", s(&store), "--d-in", "8", "--n-features", "16", "--tokens", "300", "--seed", "3", "--hierarchy", "false"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let npy = dir.path().join("x.npy");
    let out = sae(&["store", "export", "--store", s(&store), "--rows", "120", "--out", s(&npy)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let x = read_npy(&npy).unwrap();
    assert_eq!(x.shape, vec![120, 8]);
    let opened = sae_data::store::ActivationStore::open(&store).unwrap();
    let mut direct = Vec::new();
    opened.append_rows(0, 120, &mut direct).unwrap();
    assert_eq!(x.values, direct);
    // More rows than the store holds: all of them.
    let out = sae(&["store", "export", "--store", s(&store), "--rows", "100000", "--out", s(&npy)]);
    assert!(out.status.success());
    assert_eq!(read_npy(&npy).unwrap().shape, vec![300, 8]);
    // Not a store.
    fails_with(&sae(&["store", "export", "--store", s(dir.path()), "--rows", "5", "--out", s(&npy)]), &["metadata.json"]);
}

#[test]
fn a_full_or_closed_stdout_is_an_error_not_a_panic() {
    use std::io::Read;
    use std::process::Stdio;
    // A full stdout: the write error is reported, exit status 1 (a panic would be 101).
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sae")).args(["assets", "list"]).stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("writing to standard output") && !err.contains("panicked"), "{err}");
    // A closed pipe (`| head`): ends quietly with the SIGPIPE status, no panic message.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sae")).args(["assets", "list"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.code() == Some(141) || status.success(), "{status:?}: {err}");
}
