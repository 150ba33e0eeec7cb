//! The activations of the dense encoders, in burn tensor ops.

use burn::tensor::Tensor;

use crate::matmul::DenseActivation;

/// `activation(pre)` for pre-activations `pre` `[m, n]` (bias already added).
pub fn dense_activation(pre: Tensor<2>, activation: &DenseActivation) -> Tensor<2> {
    match activation {
        DenseActivation::Relu => pre.clamp_min(0.0),
        DenseActivation::JumpRelu(t) => {
            let gate = pre.clone().greater(t.clone().unsqueeze_dim(0)).float();
            pre.clamp_min(0.0) * gate
        }
    }
}
