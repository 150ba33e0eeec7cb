//! The portable versions of the hot-path operations, in burn tensor ops: they run on every
//! backend and under autodiff, and they are the defaults of [`Kernels`](crate::Kernels) and the
//! reference every faster kernel is tested against.

mod adam;
mod decode;
mod dense;
mod rows;
pub mod select;
mod selection;

pub use adam::adam_update;
pub use decode::sparse_decode;
pub use dense::dense_activation;
pub use rows::{normalize_rows, project_out_rows};
pub use select::{batch_topk, groupmax, topk_relu};
pub use selection::{select_batch_topk, select_groupmax, select_topk};
