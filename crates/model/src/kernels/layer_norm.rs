//! Layer norm over the last dimension, one pass forward and one backward.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{add_into, rows_per_task, slice, tensor, with_data};
use crate::simd::{self, multiversion};

struct LayerNormOp {
    eps: f32,
}

/// Mean and 1/sqrt(var + eps) of one row (two passes, as the primitive version).
#[inline(always)]
fn moments(row: &[f32], eps: f32, scratch: &mut [f32]) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = simd::sum(row) / n;
    for (s, &x) in scratch.iter_mut().zip(row) {
        *s = (x - mean) * (x - mean);
    }
    let var = simd::sum(scratch) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

multiversion! {
    /// Layer norm of each row of `x` (rows of `w.len()`) into `y`.
    pub(super) fn layer_norm_rows(y: &mut [f32], x: &[f32], w: &[f32], b: &[f32], eps: f32) {
        let h = w.len();
        let mut scratch = vec![0f32; h];
        for (yr, xr) in y.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
            let (mean, rstd) = moments(xr, eps, &mut scratch);
            for (((o, &xv), &wv), &bv) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                *o = (xv - mean) * rstd * wv + bv;
            }
        }
    }
}

multiversion! {
    /// Layer norm backward over rows of `w.len()`: writes `dx` and adds to `dw`, `db`.
    pub(super) fn layer_norm_grad_rows(
        dx: &mut [f32],
        x: &[f32],
        dy: &[f32],
        w: &[f32],
        eps: f32,
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let h = w.len();
        let mut xhat = vec![0f32; h];
        let mut g = vec![0f32; h];
        for ((dxr, xr), dyr) in dx
            .chunks_exact_mut(h)
            .zip(x.chunks_exact(h))
            .zip(dy.chunks_exact(h))
        {
            let (mean, rstd) = moments(xr, eps, &mut xhat);
            for i in 0..h {
                xhat[i] = (xr[i] - mean) * rstd;
                g[i] = dyr[i] * w[i];
                dw[i] += dyr[i] * xhat[i];
                db[i] += dyr[i];
            }
            let m1 = simd::sum(&g) / h as f32;
            let m2 = simd::dot(&g, &xhat) / h as f32;
            for i in 0..h {
                dxr[i] = rstd * (g[i] - m1 - xhat[i] * m2);
            }
        }
    }
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let h = w.len();
        let mut y = vec![0f32; x.len()];
        let k = rows_per_task(h) * h;
        y.par_chunks_mut(k)
            .zip(x.par_chunks(k))
            .for_each(|(yc, xc)| layer_norm_rows(yc, xc, w, b, self.eps));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = with_data(x, |x| {
            with_data(w, |w| {
                with_data(dy, |dy| {
                    let h = w.len();
                    let mut dx = vec![0f32; x.len()];
                    let k = rows_per_task(h) * h;
                    let (dw, db) = dx
                        .par_chunks_mut(k)
                        .zip(x.par_chunks(k))
                        .zip(dy.par_chunks(k))
                        .map(|((dxc, xc), dyc)| {
                            let mut dw = vec![0f32; h];
                            let mut db = vec![0f32; h];
                            layer_norm_grad_rows(dxc, xc, dyc, w, self.eps, &mut dw, &mut db);
                            (dw, db)
                        })
                        .reduce(|| (vec![0f32; h], vec![0f32; h]), add_pairs);
                    Ok((dx, dw, db))
                })
            })
        })?;
        Ok((
            Some(tensor(dx, x.shape())?),
            Some(tensor(dw, w.shape())?),
            Some(tensor(db, w.shape())?),
        ))
    }
}

fn add_pairs(mut a: (Vec<f32>, Vec<f32>), b: (Vec<f32>, Vec<f32>)) -> (Vec<f32>, Vec<f32>) {
    add_into(&mut a.0, &b.0);
    add_into(&mut a.1, &b.1);
    a
}

/// Layer norm of `x` over its last dimension with weight `w` and bias `b`, differentiable in
/// all three.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(w, b, LayerNormOp { eps: eps as f32 })
}

#[cfg(test)]
mod tests {
    use candle_core::{Var, D};

    use super::*;
    use crate::kernels::test_support::{close, grads, rand};

    #[test]
    fn layer_norm_matches_primitives() {
        let x = Var::from_tensor(&rand(&[3, 5, 16], 1)).unwrap();
        let w = Var::from_tensor(&rand(&[16], 2)).unwrap();
        let b = Var::from_tensor(&rand(&[16], 3)).unwrap();
        let fused = layer_norm(&x, &w, &b, 1e-12).unwrap();
        let mean = x.mean_keepdim(D::Minus1).unwrap();
        let xc = x.broadcast_sub(&mean).unwrap();
        let var = xc.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let reference = xc
            .broadcast_div(&(var + 1e-12).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&w)
            .unwrap()
            .broadcast_add(&b)
            .unwrap();
        close(&fused, &reference, 1e-5, "forward");
        let (gf, gr) = (
            grads(&[&x, &w, &b], &fused, 9),
            grads(&[&x, &w, &b], &reference, 9),
        );
        for (i, (a, b)) in gf.iter().zip(&gr).enumerate() {
            close(a, b, 1e-4, &format!("gradient {i}"));
        }
    }
}
