//! Optimiser helpers: in-place AdamW and a sum of squares without temporaries.

use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result, Tensor};
use rayon::prelude::*;

use super::{slice, with_data, GRAIN};

/// Sum of the squares of every element of `t`, accumulated in f64.
pub fn sum_squares(t: &Tensor) -> Result<f64> {
    with_data(t, |x| {
        Ok(x.par_chunks(GRAIN)
            .map(|c| c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>())
            .sum())
    })
}

/// One AdamW update of a parameter, its moments held by the optimiser.
pub struct AdamWUpdate<'a> {
    /// First moment, updated in place.
    pub m: std::cell::RefCell<&'a mut [f32]>,
    /// Second moment, updated in place.
    pub v: std::cell::RefCell<&'a mut [f32]>,
    /// Multiplier of the gradient (clipping).
    pub grad_scale: f32,
    /// β₁, β₂, ε.
    pub betas: (f32, f32, f32),
    /// θ ← θ · decay before the step (1 − lr·λ, or 1).
    pub decay: f32,
    /// lr / (1 − β₁ᵗ).
    pub step_size: f32,
    /// sqrt(1 − β₂ᵗ).
    pub bc2_sqrt: f32,
}

impl InplaceOp2 for AdamWUpdate<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = slice(s2, l2)?;
        let CpuStorage::F32(theta) = s1 else {
            bail!("AdamW updates f32 parameters only");
        };
        let Some((a, b)) = l1.contiguous_offsets() else {
            bail!("AdamW updates contiguous parameters only");
        };
        let theta = &mut theta[a..b];
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        if g.len() != theta.len() || m.len() != theta.len() || v.len() != theta.len() {
            bail!("AdamW: gradient and moments must match the parameter's size");
        }
        let (b1, b2, eps) = self.betas;
        let (scale, decay, step_size, bc2_sqrt) =
            (self.grad_scale, self.decay, self.step_size, self.bc2_sqrt);
        theta
            .par_chunks_mut(GRAIN)
            .zip(m.par_chunks_mut(GRAIN))
            .zip(v.par_chunks_mut(GRAIN))
            .zip(g.par_chunks(GRAIN))
            .for_each(|(((tc, mc), vc), gc)| {
                for (((t, m), v), &g) in tc.iter_mut().zip(mc).zip(vc).zip(gc) {
                    let g = g * scale;
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *t = *t * decay - step_size * *m / denom;
                }
            });
        Ok(())
    }
}
