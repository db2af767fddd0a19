//! The importer against ONNX Runtime: fixtures exported from PyTorch
//! (`scripts/reference/onnx_fixtures.py`) give, on the host executor, the logits ONNX Runtime
//! gave on the first 256 shipped digits; malformed and unsupported models are refused with a
//! message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mpq_net::{LayerKind, Pool};
use mpq_onnx::{OnnxError, import};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The largest difference between the host's logits and ONNX Runtime's, relative to
/// max(1, |logit|).
fn worst_against_onnx_runtime(name: &str) -> f32 {
    let imported = import(&fixture(&format!("{name}.onnx"))).unwrap();
    let digits = mpq_data::shipped::load().unwrap();
    let x = digits.gather_f32(&(0..256).collect::<Vec<_>>());
    let got = imported.net.forward(&x);
    let text = std::fs::read_to_string(fixture(&format!("{name}.logits.csv"))).unwrap();
    let want: Vec<f32> = text.lines().flat_map(|l| l.split(',')).map(|v| v.parse().unwrap()).collect();
    assert_eq!(got.len(), want.len());
    got.iter().zip(&want).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max)
}

#[test]
fn imported_logits_equal_onnx_runtime() {
    for name in ["mlp", "cnn", "rescnn-bn", "lenet-avg", "resnet-pieces"] {
        let worst = worst_against_onnx_runtime(name);
        assert!(worst <= 1e-5, "{name}: {worst}");
    }
}

#[test]
fn layers_map_onto_the_description() {
    let kinds = |name: &str| import(&fixture(name)).unwrap().net.kinds;
    let lin = |d_in, d_out, relu| LayerKind::Linear { d_in, d_out, relu, residual: false };
    assert_eq!(kinds("mlp.onnx"), [lin(784, 64, true), lin(64, 10, false)]);
    assert_eq!(
        kinds("cnn.onnx"),
        [LayerKind::lenet_conv(1, 8, 28), LayerKind::lenet_conv(8, 16, 13), lin(400, 32, true), lin(32, 10, false)]
    );
    let avg = |c_in, c_out, side_in| LayerKind::conv3(c_in, c_out, side_in, false, false, Pool::Avg2);
    assert_eq!(kinds("lenet-avg.onnx"), [avg(1, 6, 28), avg(6, 12, 13), lin(300, 32, true), lin(32, 10, false)]);
    let block = |pool| LayerKind::conv3(8, 8, 13, true, true, pool);
    assert_eq!(
        kinds("rescnn-bn.onnx"),
        [LayerKind::lenet_conv(1, 8, 28), block(Pool::None), block(Pool::GlobalAvg), lin(8, 10, false)]
    );
    // Strided and pointwise convolutions, batch norm folded, a skip between them.
    let conv = LayerKind::conv;
    assert_eq!(
        kinds("resnet-pieces.onnx"),
        [
            conv(1, 8, 28, true, 3, 2, Pool::None),
            conv(8, 16, 14, false, 1, 1, Pool::None),
            conv(16, 16, 14, false, 3, 2, Pool::None),
            LayerKind::conv3(16, 16, 6, true, true, Pool::None),
            conv(16, 24, 6, false, 1, 2, Pool::GlobalAvg),
            lin(24, 10, false),
        ]
    );
    // Each layer names the file's nodes it came from, batch norm and skip included.
    let sources = import(&fixture("rescnn-bn.onnx")).unwrap().sources;
    assert_eq!(sources[0], "/0/Conv + /1/BatchNormalization + /2/Relu + /3/MaxPool", "{sources:?}");
    assert_eq!(sources[1], "/4/conv/Conv + /4/bn/BatchNormalization + /4/Relu + /4/Add", "{sources:?}");
}

#[test]
fn bad_models_are_refused_with_a_message() {
    let msg = |name: &str| import(&fixture(name)).unwrap_err();
    let e = msg("unsupported-op.onnx");
    assert!(matches!(e, OnnxError::Unsupported { .. }), "{e}");
    let s = e.to_string();
    assert!(
        s.contains("unsupported-op.onnx") && s.contains("`/2/Sigmoid` (Sigmoid)") && s.contains("Supported:"),
        "{s}"
    );
    let s = msg("conv-dilated.onnx").to_string();
    assert!(s.contains("conv-dilated.onnx") && s.contains("(Conv)") && s.contains("dilation [2, 2]"), "{s}");
    let e = msg("input-32x32.onnx");
    assert!(matches!(e, OnnxError::Shape { .. }) && e.to_string().contains("32"), "{e}");
    for bad in ["truncated.onnx", "random-bytes.onnx"] {
        let e = msg(bad);
        assert!(matches!(e, OnnxError::Parse { .. }) && e.to_string().contains(bad), "{e}");
    }
    let e = msg("no-such-model.onnx");
    assert!(matches!(e, OnnxError::Read { .. }) && e.to_string().contains("no-such-model.onnx"), "{e}");
}

/// A normalisation folded into the first layer gives, on raw pixels / 255, the logits the
/// unfolded network gives on normalised pixels (to f32 reassociation) (linear and unpadded convolution); a mean that
/// a zero-padded first convolution cannot absorb is refused, naming the file.
#[test]
fn input_normalisation_folds_into_the_first_layer() {
    use mpq_onnx::Normalisation;
    let digits = mpq_data::shipped::load().unwrap();
    let x = digits.gather_f32(&(0..64).collect::<Vec<_>>());
    let norm = Normalisation { mean: 0.1307, scale: 1.0 / 0.3081 };
    let normalised: Vec<f32> = x.iter().map(|v| (v - norm.mean) * norm.scale).collect();
    for name in ["mlp.onnx", "cnn.onnx"] {
        let plain = import(&fixture(name)).unwrap();
        let want = plain.net.forward(&normalised);
        let mut folded = plain.clone();
        folded.normalise_input(norm, &fixture(name)).unwrap();
        let got = folded.net.forward(&x);
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max);
        // The folded sums associate differently (the mean's share is summed once, in f64).
        assert!(worst <= 1e-4, "{name}: {worst}");
        assert_ne!(folded.net.biases[0], plain.net.biases[0], "{name}: the mean moved the bias");
    }
    // A same-padded convolution as the first layer: scale only.
    let mut padded = import(&fixture("mlp.onnx")).unwrap();
    padded.net.kinds[0] = LayerKind::conv3(1, 1, 28, true, false, Pool::None);
    (padded.net.weights[0], padded.net.biases[0]) = (vec![0.5; 9], vec![0.25]);
    let e = padded.clone().normalise_input(norm, &fixture("mlp.onnx")).unwrap_err().to_string();
    assert!(e.contains("mlp.onnx") && e.contains("zero-padded"), "{e}");
    padded.normalise_input(Normalisation { mean: 0.0, scale: 2.0 }, &fixture("mlp.onnx")).unwrap();
    let mut any = import(&fixture("mlp.onnx")).unwrap();
    let e = any.normalise_input(Normalisation { mean: 0.0, scale: 0.0 }, &fixture("mlp.onnx")).unwrap_err();
    assert!(e.to_string().contains("non-zero scale"), "{e}");
}

/// The description's layer names follow the harness's own: conv1, conv2, fc1, fc2.
#[test]
fn imported_layers_are_named_by_kind_and_position() {
    let names: Vec<String> = import(&fixture("cnn.onnx")).unwrap().arch().layers.into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["conv1", "conv2", "fc1", "fc2"]);
}
