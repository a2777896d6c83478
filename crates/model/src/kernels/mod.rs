//! Fused CPU kernels: candle custom ops with their backward written out.
//!
//! Built from candle's primitives, layer norm is nine ops, masked softmax six, bias + GELU
//! two forward and a dozen backward, and each op is a full pass over memory on one thread
//! whose result the autograd graph keeps. Here each is one pass forward and one backward,
//! split over rows on the rayon pool. Dropout draws its mask from a counter-based hash of
//! (seed, element index), so the mask is never stored: backward regenerates it.
//!
//! The element-wise loops (softmax, GELU, bias, dropout, layer norm) are compiled for
//! AVX-512, AVX2 and the baseline and picked at run time ([`crate::simd`]); the three give
//! the same bits. Matrix products go through [`crate::packed`] (AVX-512, AVX2 + FMA, NEON) where it is
//! the faster (attention, and linear layers of up to [`PACKED_MAX_ROWS`] rows) and through
//! the `gemm` crate otherwise.
//!
//! One file per kernel family, its tests beside it: `layer_norm`, `dropout`, `fastmath`
//! (`exp` and exact GELU), `softmax` (and its gradient), `gemm` (the `gemm` crate's products
//! on strided views), `linear`, `attention` and `adamw` (the optimiser's in-place update).
//! This file holds what they share, and the test that every element-wise loop gives the same
//! bits at each instruction set.
//!
//! All kernels take f32 tensors (made contiguous first) and give the same numbers as the
//! primitive ops up to float rounding; `tests/parity.rs` checks them against transformers.

use candle_core::{bail, CpuStorage, Layout, Result, Shape, Storage, Tensor};

mod adamw;
mod attention;
mod dropout;
mod fastmath;
mod gemm;
mod layer_norm;
mod linear;
mod softmax;
#[cfg(test)]
mod test_support;

pub use adamw::{sum_squares, AdamWUpdate};
pub use attention::{attention, attention_first_query};
pub use dropout::dropout;
pub use layer_norm::layer_norm;
pub use linear::{linear, packs, Activation, PACKED_MAX_ROWS};

/// The `gemm` crate's product on strided views, for [`crate::speed`].
pub(crate) use gemm::{matmul as gemm_matmul, View};

/// Elements per rayon task, so that small tensors are not split into many tiny tasks.
pub(super) const GRAIN: usize = 1 << 14;

/// The f32 data of a contiguous CPU storage.
pub(super) fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("fused kernels take f32 tensors only");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("fused kernels take contiguous tensors"),
    }
}

/// Runs `f` on the contiguous f32 data of `t`.
pub(super) fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(c) => f(slice(c, l)?),
        _ => bail!("fused kernels run on the CPU only"),
    }
}

/// A CPU tensor of `shape` holding `data`.
pub(super) fn tensor(data: Vec<f32>, shape: &Shape) -> Result<Tensor> {
    Tensor::from_vec(data, shape.clone(), &candle_core::Device::Cpu)
}

/// Rows per rayon task for rows of `width` elements.
pub(super) fn rows_per_task(width: usize) -> usize {
    (GRAIN / width.max(1)).max(1)
}

/// Adds `x` to `acc` element-wise.
pub(super) fn add_into(acc: &mut [f32], x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

#[cfg(test)]
mod tests {
    use super::dropout::drop_in_place;
    use super::fastmath::{gelu_grad_in_place, gelu_in_place};
    use super::layer_norm::{layer_norm_grad_rows, layer_norm_rows};
    use super::linear::add_bias;
    use super::softmax::{softmax_grad_rows, softmax_rows};
    use super::test_support::rand;

    #[test]
    fn element_wise_loops_give_the_same_bits_at_every_instruction_set() {
        let v = |n: usize, seed: u64| -> Vec<f32> {
            rand(&[n], seed).flatten_all().unwrap().to_vec1().unwrap()
        };
        let (rows, h) = (7, 37);
        let (x, dy, w, b) = (v(rows * h, 1), v(rows * h, 2), v(h, 3), v(h, 4));
        let mask: Vec<f32> = (0..h)
            .map(|i| if i < 30 { 0.0 } else { f32::MIN })
            .collect();
        let runs = crate::simd::tests::at_each_level(|| {
            let mut out: Vec<Vec<f32>> = Vec::new();
            let mut y = x.clone();
            gelu_in_place(&mut y);
            out.push(y);
            let mut g = dy.clone();
            gelu_grad_in_place(&mut g, &x);
            out.push(g);
            let mut y = x.clone();
            add_bias(&mut y, &w);
            out.push(y);
            let mut y = x.clone();
            drop_in_place(&mut y, 0.3, 99, 1000);
            out.push(y);
            let mut p = x.clone();
            softmax_rows(&mut p, &mask, 0.7);
            let mut ds = dy.clone();
            softmax_grad_rows(&mut ds, &p, h, 0.7);
            out.push(p);
            out.push(ds);
            let mut y = vec![0f32; x.len()];
            layer_norm_rows(&mut y, &x, &w, &b, 1e-12);
            out.push(y);
            let (mut dx, mut dw, mut db) = (vec![0f32; x.len()], vec![0f32; h], vec![0f32; h]);
            layer_norm_grad_rows(&mut dx, &x, &dy, &w, 1e-12, &mut dw, &mut db);
            out.extend([dx, dw, db]);
            out
        });
        crate::simd::tests::report_levels(&runs.iter().map(|r| r.0).collect::<Vec<_>>());
        for (level, out) in &runs[1..] {
            for (i, (a, b)) in out.iter().zip(&runs[0].1).enumerate() {
                let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "loop {i} differs at level {level} from the baseline");
            }
        }
    }
}
