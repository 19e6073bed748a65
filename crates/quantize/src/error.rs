//! The error type of the quantizer.

/// Why a layer (or an operating point) cannot be quantized. Every variant names what it is
/// about, so the message alone tells a user what to fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// The tensor has no elements.
    #[error("tensor `{tensor}` is empty ({rows}x{cols}); nothing to quantize")]
    Empty {
        /// Tensor name.
        tensor: String,
        /// Rows given.
        rows: usize,
        /// Columns given.
        cols: usize,
    },
    /// `data.len()` is not `rows * cols`.
    #[error("tensor `{tensor}`: {len} values do not form a {rows}x{cols} matrix")]
    Shape {
        /// Tensor name.
        tensor: String,
        /// Rows given.
        rows: usize,
        /// Columns given.
        cols: usize,
        /// Values given.
        len: usize,
    },
    /// A NaN or infinite weight (the first one, lowest flat index).
    #[error(
        "tensor `{tensor}`: non-finite value {value} at flat index {index} (row {row}, col {col}); \
         the quantizer refuses NaN/Inf (load with --allow-nonfinite=zero|clamp to replace them)"
    )]
    NonFinite {
        /// Tensor name.
        tensor: String,
        /// Row-major flat index.
        index: usize,
        /// Row (output feature).
        row: usize,
        /// Column (input feature).
        col: usize,
        /// The value.
        value: f32,
    },
    /// The per-column weights do not fit the tensor or are invalid.
    #[error("tensor `{tensor}`: bad column weights: {reason}")]
    ColumnWeights {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The operating point or an option is not supported by this quantizer.
    #[error("operating point {point}: {reason}")]
    Unsupported {
        /// The point's canonical name.
        point: String,
        /// Why.
        reason: String,
    },
}
