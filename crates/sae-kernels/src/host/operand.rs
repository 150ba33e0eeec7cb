//! A GEMM operand as the host kernels read it: a matrix stored row-major or as its transpose.

/// A GEMM operand: the logical matrix `[rows, cols]`, stored row-major (`transposed = false`)
/// or as its transpose, i.e. a row-major `[cols, rows]` slice (`transposed = true`), so that
/// `Aᵀ · B` and `A · Bᵀ` (the gradients of a product) need no transposed copy.
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a> {
    /// The stored elements (`rows × cols` of them).
    pub data: &'a [f32],
    /// Logical rows.
    pub rows: usize,
    /// Logical columns.
    pub cols: usize,
    /// Whether `data` holds the transpose (row-major `[cols, rows]`).
    pub transposed: bool,
}

impl<'a> Operand<'a> {
    /// `data` as a row-major `[rows, cols]` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, transposed: false }
    }

    /// The transpose of the row-major `[cols, rows]` matrix `data`: logically `[rows, cols]`.
    pub fn transpose_of(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, transposed: true }
    }

    /// Strides `(between rows, between columns)` of the logical matrix in `data`.
    pub(super) fn strides(&self) -> (usize, usize) {
        if self.transposed { (1, self.rows) } else { (self.cols, 1) }
    }
}
