//! Inverted dropout with a mask drawn from a counter-based hash of (seed, element index), so
//! that the mask is never stored: backward regenerates it.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{slice, tensor, with_data, GRAIN};
use crate::simd::multiversion;

/// Uniform in [0, 1) from (seed, index): SplitMix64's finaliser over a counter, 24 bits.
#[inline(always)]
fn uniform(seed: u64, i: u64) -> f32 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

struct DropoutOp {
    p: f32,
    seed: u64,
}

multiversion! {
    /// Inverted dropout in place on `xs`, whose first element has index `base` in the
    /// tensor: element `base + j` is kept (and scaled by `1/(1-p)`) when its hash is `>= p`.
    pub(super) fn drop_in_place(xs: &mut [f32], p: f32, seed: u64, base: u64) {
        let keep = 1.0 / (1.0 - p);
        for (j, v) in xs.iter_mut().enumerate() {
            *v = if uniform(seed, base + j as u64) >= p {
                *v * keep
            } else {
                0.0
            };
        }
    }
}

impl DropoutOp {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut y = x.to_vec();
        y.par_chunks_mut(GRAIN)
            .enumerate()
            .for_each(|(c, yc)| drop_in_place(yc, self.p, self.seed, (c * GRAIN) as u64));
        y
    }
}

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "fused-dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(self.apply(slice(s, l)?)), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_data(dy, |dy| Ok(self.apply(dy)))?;
        Ok(Some(tensor(dx, x.shape())?))
    }
}

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by
/// `1/(1-p)`; the mask is a function of `seed` and the element's index only.
pub fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    x.contiguous()?.apply_op1(DropoutOp { p, seed })
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;
    use crate::kernels::test_support::close;

    #[test]
    fn dropout_drops_about_p_and_backward_reuses_the_mask() {
        let x = Var::from_tensor(&Tensor::ones((1000, 100), DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let y = dropout(&x, 0.1, 42).unwrap();
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let dropped = v.iter().filter(|&&e| e == 0.0).count() as f64 / v.len() as f64;
        assert!((dropped - 0.1).abs() < 0.005, "dropped {dropped}");
        assert!(v.iter().all(|&e| e == 0.0 || (e - 1.0 / 0.9).abs() < 1e-6));
        let g = y.sum_all().unwrap().backward().unwrap();
        close(
            g.get(x.as_tensor()).unwrap(),
            &y,
            0.0,
            "gradient is the mask",
        );
        let other = dropout(&x, 0.1, 43).unwrap();
        assert_ne!(
            other.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            v,
            "seed matters"
        );
    }
}
